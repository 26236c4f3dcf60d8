use api::game::reward::v1 as pb;
use tonic::Code;

use crate::helpers::spawn_app;
use testkit::AsCaller;

#[tokio::test]
async fn malformed_reward_ids_are_invalid_arguments_and_unknown_ones_are_not_found() {
    let mut app = spawn_app(None).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        (String::new(), Code::InvalidArgument, "reward_id: must not be empty".to_owned()),
        ("nope".to_owned(), Code::InvalidArgument, "reward_id: must be a UUID".to_owned()),
        (unknown.clone(), Code::NotFound, format!("reward {unknown} does not exist")),
    ];
    for (reward_id, code, message) in cases {
        let status = app.client.get_reward(pb::GetRewardRequest { reward_id }.by_operator()).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (code, message.as_str()));
    }
}
