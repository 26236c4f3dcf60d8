//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.settlement.v1`.

use api::game::settlement::v1::{self as pb, settlement_service_server::SettlementService};
use platform::caller::{caller, require_operator};
use platform::events::timestamp;
use platform::grpc::{invalid, store_failure};
use tonic::{Request, Response, Status};

use crate::app::{PageSize, SettlementError, SettlementQuery, Settlements};
use crate::domain::{ProductSku, Settlement};
use crate::ports::Ledger;

/// Serves `game.settlement.v1.SettlementService`.
#[derive(Debug, Clone)]
pub struct SettlementGrpc<L> {
    settlements: Settlements<L>,
}

impl<L> SettlementGrpc<L> {
    /// The adapter over the use cases.
    pub fn new(settlements: Settlements<L>) -> Self {
        Self { settlements }
    }
}

impl From<SettlementError> for Status {
    fn from(error: SettlementError) -> Self {
        match error {
            SettlementError::Storage(error) => store_failure(&error),
        }
    }
}

/// Page tokens are opaque to callers: the ledger position a page ended at,
/// as lower-case hex of `after:<position>`. Only the exact text this service
/// issues decodes, so a token cannot be edited into another valid one by
/// accident.
mod page_token {
    use crate::domain::LedgerPosition;

    const PREFIX: &str = "after:";

    /// The token of the page that follows `position`.
    pub fn encode(position: LedgerPosition) -> String {
        format!("{PREFIX}{}", position.value()).bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// The position a token issued by [`encode`] stands for.
    pub fn decode(token: &str) -> Option<LedgerPosition> {
        // Odd lengths and split characters fail in `get`; anything else
        // that is not what `encode` wrote fails the comparison below.
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let text = String::from_utf8(bytes).ok()?;
        let position = LedgerPosition::new(text.strip_prefix(PREFIX)?.parse().ok()?)?;
        // Only the exact form this service writes: not "after:007", not
        // upper-case hex, not "+f" (which `from_str_radix` would accept).
        (encode(position) == token).then_some(position)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_round_trip() {
            for n in [1, 3, 50, i64::MAX] {
                let position = LedgerPosition::new(n).unwrap();
                assert_eq!(decode(&encode(position)), Some(position));
            }
        }

        #[test]
        fn tokens_this_service_did_not_issue_do_not_decode() {
            let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
            for bad in [
                "zz".to_owned(),
                "abc".to_owned(),
                hex("after:"),
                hex("after:0"),
                hex("after:-1"),
                hex("after:007"),
                hex("after:+7"),
                hex("before:7"),
                hex("7"),
                encode(LedgerPosition::new(7).unwrap()).to_uppercase(),
            ] {
                assert_eq!(decode(&bad), None, "{bad}");
            }
        }
    }
}

fn query(request: &pb::ListSettlementsRequest) -> Result<SettlementQuery, Status> {
    let product_sku = match request.product_sku.as_str() {
        "" => None,
        sku => Some(ProductSku::parse(sku).map_err(|e| invalid("product_sku", e))?),
    };
    let page_size = PageSize::new(request.page_size).map_err(|e| invalid("page_size", e))?;
    let after = match request.page_token.as_str() {
        "" => None,
        token => {
            Some(page_token::decode(token).ok_or_else(|| invalid("page_token", "is not a token this service issued"))?)
        }
    };
    Ok(SettlementQuery { product_sku, after, page_size })
}

fn to_pb(settlement: Settlement) -> pb::Settlement {
    pb::Settlement {
        settlement_id: settlement.id.to_string(),
        order_id: settlement.order_id.to_string(),
        mission_id: settlement.mission_id.to_string(),
        product_sku: settlement.product_sku.to_string(),
        amount: settlement.amount.minor_units(),
        currency: settlement.amount.currency().to_string(),
        customer_id: settlement.customer_id.to_string(),
        recorded_at: Some(timestamp(settlement.recorded_at)),
    }
}

#[tonic::async_trait]
impl<L: Ledger> SettlementService for SettlementGrpc<L> {
    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        // What is owed to the vendor is the operators' business alone.
        require_operator(&caller(&request)?)?;
        let query = query(request.get_ref())?;
        let page = self.settlements.list(query).await?;
        Ok(Response::new(pb::ListSettlementsResponse {
            settlements: page.settlements.into_iter().map(to_pb).collect(),
            next_page_token: page.next_after.map(page_token::encode).unwrap_or_default(),
        }))
    }
}
