//! The gRPC adapter: requests parsed into domain values, use cases called,
//! pages and errors mapped to the contract of `game.mypage.v1`.

use std::pin::Pin;

use api::game::mission::v1::MissionStatus as PbMissionStatus;
use api::game::mypage::v1::{self as pb, my_page_service_server::MyPageService};
use api::game::reward::v1::RewardStatus as PbRewardStatus;
use api::game::wallet::v1::{ExchangeStatus as PbExchangeStatus, Reservation, WalletEntryStatus as PbEntryStatus};
use futures::{Stream, StreamExt as _};
use kernel::{CustomerId, Points};
use platform::CancellationToken;
use platform::caller::{caller, require_reader, while_token_valid};
use platform::events::timestamp;
use platform::grpc::{field, store_failure};
use tonic::{Request, Response, Status};

use crate::app::{MyPageError, MyPages};
use crate::domain::{
    EntryStatus, ExchangeLine, ExchangeStatus, MissionLine, MissionStatus, MyPage, PlayerPage, RewardStatus, WalletLine,
};
use crate::ports::PageStore;

/// Serves `game.mypage.v1.MyPageService`.
#[derive(Debug, Clone)]
pub struct MyPageGrpc<S> {
    pages: MyPages<S>,
    /// Cancelled when the service stops, so that open watches end and never
    /// hold the drain.
    stopping: CancellationToken,
}

impl<S> MyPageGrpc<S> {
    /// The adapter over the use cases; watches end when `stopping` is cancelled.
    pub fn new(pages: MyPages<S>, stopping: CancellationToken) -> Self {
        Self { pages, stopping }
    }
}

impl From<MyPageError> for Status {
    fn from(error: MyPageError) -> Self {
        match error {
            MyPageError::Storage(error) => store_failure(&error),
        }
    }
}

fn to_pb(page: PlayerPage) -> pb::MyPage {
    pb::MyPage {
        customer_id: page.customer_id.to_string(),
        missions: page.page.missions().iter().map(mission_to_pb).collect(),
        wallet: page.page.wallet().iter().map(|line| entry_to_pb(&page.page, line)).collect(),
        available_points: page.page.available_points().value(),
        version: page.version,
        exchanges: page.page.exchanges().iter().map(exchange_to_pb).collect(),
    }
}

fn mission_to_pb(line: &MissionLine) -> pb::MyPageMission {
    pb::MyPageMission {
        mission_id: line.mission_id.to_string(),
        mission_code: line.mission_code.clone().unwrap_or_default(),
        status: match line.status {
            MissionStatus::Achieved => PbMissionStatus::Achieved,
            MissionStatus::Rewarded => PbMissionStatus::Rewarded,
        }
        .into(),
        reward_id: line.reward_id.map(|id| id.to_string()).unwrap_or_default(),
        reward_status: match line.reward_status {
            None => PbRewardStatus::Unspecified,
            Some(RewardStatus::Allocated) => PbRewardStatus::Allocated,
            Some(RewardStatus::Issued) => PbRewardStatus::Issued,
            Some(RewardStatus::Exchanged) => PbRewardStatus::Exchanged,
            Some(RewardStatus::Expired) => PbRewardStatus::Expired,
        }
        .into(),
        reward_points: line.points().map(Points::value).unwrap_or_default(),
        achieved_at: line.achieved_at.map(timestamp),
    }
}

fn entry_to_pb(page: &MyPage, line: &WalletLine) -> pb::MyPageWalletEntry {
    let (gift_order_id, product_sku) = page.entry_order(line);
    pb::MyPageWalletEntry {
        entry_id: line.entry_id.to_string(),
        reward_id: line.reward_id.to_string(),
        mission_id: line.mission_id.to_string(),
        points: line.points.map(Points::value).unwrap_or_default(),
        status: match page.entry_status(line) {
            EntryStatus::Available => PbEntryStatus::Available,
            EntryStatus::Exchanged => PbEntryStatus::Exchanged,
            EntryStatus::Expired => PbEntryStatus::Expired,
        }
        .into(),
        gift_order_id: gift_order_id.unwrap_or_default(),
        product_sku: product_sku.unwrap_or_default(),
        expires_at: line.expires_at.map(timestamp),
        remaining_points: page.remaining_points(line).map(Points::value).unwrap_or_default(),
    }
}

fn exchange_to_pb(line: &ExchangeLine) -> pb::MyPageExchange {
    pb::MyPageExchange {
        exchange_id: line.exchange_id.to_string(),
        product_sku: line.product_sku.clone().unwrap_or_default(),
        price_points: line.price_points.map(Points::value).unwrap_or_default(),
        status: match line.status {
            ExchangeStatus::Placed => PbExchangeStatus::Placed,
            ExchangeStatus::Refunded => PbExchangeStatus::Refunded,
        }
        .into(),
        gift_order_id: line.gift_order_id.clone().unwrap_or_default(),
        reservations: line
            .payments
            .iter()
            .map(|payment| Reservation {
                entry_id: payment.entry_id.to_string(),
                reward_id: payment.reward_id.to_string(),
                points: payment.points.map(Points::value).unwrap_or_default(),
            })
            .collect(),
        placed_at: line.placed_at.map(timestamp),
        refunded_at: line.refunded_at.map(timestamp),
        cancel_reason: line.cancel_reason.clone().unwrap_or_default(),
        refunded_points: line.refunded_points().value(),
        expired_points: line.expired_points().value(),
    }
}

/// The pages of one watch, as sent to the caller.
type PageStream = Pin<Box<dyn Stream<Item = Result<pb::WatchMyPageResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl<S: PageStore> MyPageService for MyPageGrpc<S> {
    async fn get_my_page(
        &self,
        request: Request<pb::GetMyPageRequest>,
    ) -> Result<Response<pb::GetMyPageResponse>, Status> {
        let caller = caller(&request)?;
        let customer = field("customer_id", &request.get_ref().customer_id, CustomerId::parse)?;
        require_reader(&caller, &customer)?;
        let page = self.pages.get(customer).await?;
        Ok(Response::new(pb::GetMyPageResponse { my_page: Some(to_pb(page)) }))
    }

    type WatchMyPageStream = PageStream;

    async fn watch_my_page(
        &self,
        request: Request<pb::WatchMyPageRequest>,
    ) -> Result<Response<Self::WatchMyPageStream>, Status> {
        let caller = caller(&request)?;
        let customer = field("customer_id", &request.get_ref().customer_id, CustomerId::parse)?;
        require_reader(&caller, &customer)?;
        let pages = self.pages.watch(customer, self.stopping.clone()).await?;
        let responses = pages
            .map(|page| page.map(|page| pb::WatchMyPageResponse { my_page: Some(to_pb(page)) }).map_err(Status::from));
        Ok(Response::new(Box::pin(while_token_valid(&caller, responses))))
    }
}
