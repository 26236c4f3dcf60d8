//! The gRPC adapter: requests parsed into domain values, use cases called,
//! results and errors mapped to the contract of `game.settlement.v1`.

use api::game::settlement::v1::{self as pb, settlement_service_server::SettlementService};
use platform::caller::{caller, require_operator};
use platform::grpc::{invalid, store_failure};
use tonic::{Request, Response, Status};

use crate::adapters::events;
use crate::app::{PageSize, PeriodQuery, SettlementError, SettlementQuery, Settlements};
use crate::domain::{LedgerPosition, PeriodId, ProductSku};
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
            SettlementError::PeriodNotFound(_) => Status::not_found(error.to_string()),
            // Only the policy reverses; a call never gets here.
            SettlementError::NotSettledYet(_) => Status::failed_precondition(error.to_string()),
            SettlementError::Storage(error) => store_failure(&error),
        }
    }
}

/// Page tokens are opaque to callers: where a page ended, as lower-case hex
/// of `after:<ledger position>` (settlements) or `before:<start in ms>`
/// (periods). Only the exact text this service issues decodes, so a token
/// cannot be edited into another valid one by accident, nor one of a
/// listing passed to the other.
mod page_token {
    /// The ledger position a page of settlements ended at.
    pub const AFTER: &str = "after:";
    /// The start of the last period a page of periods showed.
    pub const BEFORE: &str = "before:";

    /// The token of the page that follows `value`, in the listing `prefix` names.
    pub fn encode(prefix: &str, value: i64) -> String {
        format!("{prefix}{value}").bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// The value a token issued by [`encode`] with `prefix` stands for.
    pub fn decode(prefix: &str, token: &str) -> Option<i64> {
        // Odd lengths and split characters fail in `get`; anything else
        // that is not what `encode` wrote fails the comparison below.
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let text = String::from_utf8(bytes).ok()?;
        let value = text.strip_prefix(prefix)?.parse().ok()?;
        // Only the exact form this service writes: not "after:007", not
        // upper-case hex, not "+f" (which `from_str_radix` would accept).
        (encode(prefix, value) == token).then_some(value)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tokens_round_trip() {
            for n in [1, 3, 50, i64::MAX, -7] {
                assert_eq!(decode(AFTER, &encode(AFTER, n)), Some(n));
                assert_eq!(decode(BEFORE, &encode(BEFORE, n)), Some(n));
            }
        }

        #[test]
        fn tokens_this_service_did_not_issue_do_not_decode() {
            let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
            for bad in [
                "zz".to_owned(),
                "abc".to_owned(),
                hex("after:"),
                hex("after:007"),
                hex("after:+7"),
                hex("before:7"),
                hex("7"),
                encode(AFTER, 7).to_uppercase(),
            ] {
                assert_eq!(decode(AFTER, &bad), None, "{bad}");
            }
            assert_eq!(decode(BEFORE, &encode(AFTER, 7)), None, "a token of the other listing");
        }
    }
}

fn not_issued() -> Status {
    invalid("page_token", "is not a token this service issued")
}

/// A page token as the value it stands for; `None` for the first page.
fn token_value(prefix: &str, token: &str) -> Result<Option<i64>, Status> {
    match token {
        "" => Ok(None),
        token => page_token::decode(prefix, token).map(Some).ok_or_else(not_issued),
    }
}

fn query(request: &pb::ListSettlementsRequest) -> Result<SettlementQuery, Status> {
    let product_sku = match request.product_sku.as_str() {
        "" => None,
        sku => Some(ProductSku::parse(sku).map_err(|e| invalid("product_sku", e))?),
    };
    let page_size = PageSize::new(request.page_size).map_err(|e| invalid("page_size", e))?;
    let after = token_value(page_token::AFTER, &request.page_token)?
        .map(|position| LedgerPosition::new(position).ok_or_else(not_issued))
        .transpose()?;
    Ok(SettlementQuery { product_sku, after, page_size })
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
            settlements: page.settlements.into_iter().map(events::settlement).collect(),
            next_page_token: page
                .next_after
                .map(|position| page_token::encode(page_token::AFTER, position.value()))
                .unwrap_or_default(),
        }))
    }

    async fn list_periods(
        &self,
        request: Request<pb::ListPeriodsRequest>,
    ) -> Result<Response<pb::ListPeriodsResponse>, Status> {
        require_operator(&caller(&request)?)?;
        let request = request.into_inner();
        let page_size = PageSize::new(request.page_size).map_err(|e| invalid("page_size", e))?;
        let before = token_value(page_token::BEFORE, &request.page_token)?;
        let page = self.settlements.periods(PeriodQuery { before, page_size }).await?;
        Ok(Response::new(pb::ListPeriodsResponse {
            periods: page.periods.iter().map(|period| events::settlement_period(period, &[])).collect(),
            next_page_token: page
                .next_before
                .map(|starts_at| page_token::encode(page_token::BEFORE, starts_at))
                .unwrap_or_default(),
        }))
    }

    async fn get_period(
        &self,
        request: Request<pb::GetPeriodRequest>,
    ) -> Result<Response<pb::GetPeriodResponse>, Status> {
        require_operator(&caller(&request)?)?;
        let id = PeriodId::parse(&request.get_ref().period_id).map_err(|e| invalid("period_id", e))?;
        let (period, totals) = self.settlements.period(id).await?;
        Ok(Response::new(pb::GetPeriodResponse { period: Some(events::settlement_period(&period, &totals)) }))
    }
}
