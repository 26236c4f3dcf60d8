//! GetMyPage for players the service has not heard of, and malformed requests.

use api::game::mypage::v1 as pb;
use tonic::Code;

use crate::helpers::spawn_app;
use testkit::AsCaller;

#[tokio::test]
async fn a_player_no_event_mentioned_gets_an_empty_page() {
    let app = spawn_app().await;
    assert_eq!(
        app.page("newcomer").await,
        pb::MyPage {
            customer_id: "newcomer".into(),
            missions: vec![],
            wallet: vec![],
            available_points: 0,
            version: 0,
            exchanges: vec![],
        }
    );
}

#[tokio::test]
async fn a_malformed_customer_id_is_an_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        ("", "customer_id: must not be empty"),
        ("player 1", "customer_id: may only contain letters, digits, '-', '_' and '.'"),
        (&"x".repeat(65), "customer_id: must be at most 64 characters"),
    ];
    for (customer, message) in cases {
        let status = app
            .client
            .clone()
            .get_my_page(pb::GetMyPageRequest { customer_id: customer.into() }.by_operator())
            .await
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));

        let status = app
            .client
            .clone()
            .watch_my_page(pb::WatchMyPageRequest { customer_id: customer.into() }.by_operator())
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }
}
