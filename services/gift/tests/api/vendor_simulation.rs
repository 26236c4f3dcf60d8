//! Gift's fault injection (`game.gift.admin.v1.VendorSimulationService`):
//! served only when configured, and then to operators only.

use api::game::gift::admin::v1::{self as admin, vendor_simulation_service_client::VendorSimulationServiceClient};
use testkit::AsCaller;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{TestApp, spawn_app, spawn_with_vendor_simulation};

async fn vendor(app: &TestApp) -> VendorSimulationServiceClient<Channel> {
    VendorSimulationServiceClient::connect(app.service.url()).await.unwrap()
}

fn slow() -> admin::SetVendorBehaviourRequest {
    admin::SetVendorBehaviourRequest {
        behaviour: Some(admin::VendorBehaviour { latency_ms: 50, ..Default::default() }),
    }
}

#[tokio::test]
async fn the_vendor_simulation_is_not_served_unless_configured() {
    let app = spawn_app(None).await;
    let mut vendor = vendor(&app).await;

    let set = vendor.set_vendor_behaviour(slow().by_operator()).await.unwrap_err();
    let get = vendor.get_vendor_behaviour(admin::GetVendorBehaviourRequest {}.by_operator()).await.unwrap_err();

    assert_eq!(set.code(), Code::Unimplemented, "{set:?}");
    assert_eq!(get.code(), Code::Unimplemented, "{get:?}");
}

#[tokio::test]
async fn a_player_may_neither_change_nor_read_the_vendors_behaviour() {
    let app = spawn_with_vendor_simulation().await;
    let mut vendor = vendor(&app).await;

    let set = vendor.set_vendor_behaviour(slow().by_player("player-1")).await.unwrap_err();
    let get = vendor.get_vendor_behaviour(admin::GetVendorBehaviourRequest {}.by_player("player-1")).await.unwrap_err();

    for refused in [set, get] {
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert_eq!(refused.message(), "player-1 lacks the operator role this needs");
    }
    let behaviour = vendor.get_vendor_behaviour(admin::GetVendorBehaviourRequest {}.by_operator()).await.unwrap();
    assert_eq!(behaviour.into_inner().behaviour, Some(admin::VendorBehaviour::default()), "unchanged");
}

#[tokio::test]
async fn a_call_without_a_token_is_unauthenticated() {
    let app = spawn_with_vendor_simulation().await;
    let mut vendor = vendor(&app).await;

    let set = vendor.set_vendor_behaviour(slow()).await.unwrap_err();
    let get = vendor.get_vendor_behaviour(admin::GetVendorBehaviourRequest {}).await.unwrap_err();

    for refused in [set, get] {
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert_eq!(refused.message(), "missing bearer token: send `authorization: Bearer <JWT>`");
    }
}

#[tokio::test]
async fn an_operator_changes_the_vendors_behaviour_and_reads_it_back() {
    let app = spawn_with_vendor_simulation().await;
    let mut vendor = vendor(&app).await;

    let set = vendor.set_vendor_behaviour(slow().by_operator()).await.unwrap().into_inner();
    let read =
        vendor.get_vendor_behaviour(admin::GetVendorBehaviourRequest {}.by_operator()).await.unwrap().into_inner();

    assert_eq!(set.behaviour, slow().behaviour);
    assert_eq!(read.behaviour, slow().behaviour);
    assert_eq!((read.exchanges_in_flight, read.max_exchanges_in_flight), (0, 64));
}
