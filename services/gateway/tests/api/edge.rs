//! The edge policy through the real gateway in front of a real mission
//! service: every bad token, what stays open, roles, rate limits, message
//! size, garbage, deadlines, the operators' programme served beside the
//! missions, and the operators' gift catalogue served beside the gifts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::game::gift::admin::v1::{
    self as gift_admin, catalogue_service_client::CatalogueServiceClient,
    vendor_simulation_service_client::VendorSimulationServiceClient,
};
use api::game::gift::v1::{self as gift, gift_service_client::GiftServiceClient};
use api::game::mission::v1::{self as pb, mission_service_client::MissionServiceClient};
use api::game::programme::v1::{self as programme, programme_service_client::ProgrammeServiceClient};
use api::game::settlement::v1::{self as settlement, settlement_service_client::SettlementServiceClient};
use base64::Engine as _;
use gateway::rate_limit::RateLimit;
use platform::CancellationToken;
use serde_json::json;
use testkit::{AsCaller, Broker, DevIssuer, Running, TempStore, authorized, identity, service_config};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

struct Edge {
    channel: Channel,
    url: String,
    _broker: Broker,
    _mission: Running,
    _store: TempStore,
    stop: CancellationToken,
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The gateway (configured by `tune`) in front of one mission service.
async fn edge(tune: impl FnOnce(&mut gateway::GatewayConfig)) -> Edge {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mission = Running::serve(mission::build(service_config(&broker, store.sqlite_url("mission"))).await.unwrap());
    let mut config = gateway::GatewayConfig::local();
    config.addr = ([127, 0, 0, 1], 0).into();
    config.shutdown_grace = Duration::from_secs(1);
    config.auth = Some(identity().auth_config());
    for (service, url) in &mut config.upstreams {
        *url = if *service == "game.mission.v1.MissionService" { mission.url() } else { "http://127.0.0.1:1".into() };
    }
    tune(&mut config);
    let app = gateway::App::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    let channel = Channel::from_shared(url.clone()).unwrap().connect().await.unwrap();
    Edge { channel, url, _broker: broker, _mission: mission, _store: store, stop }
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn claims(customer: &str) -> serde_json::Value {
    json!({
        "iss": dev_issuer_name(), "aud": "game-rewards", "sub": customer,
        "roles": ["player"], "exp": now() + 300, "nbf": now() - 5,
    })
}

fn dev_issuer_name() -> &'static str {
    "https://dev.game-rewards.local"
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn list_missions(customer: &str) -> pb::ListMissionsRequest {
    pb::ListMissionsRequest { customer_id: customer.into() }
}

#[tokio::test]
async fn every_bad_token_is_refused_as_unauthenticated_with_a_clear_message() {
    let edge = edge(|c| c.rate_limit = RateLimit { per_second: 1e6, burst: 1_000_000 }).await;
    let mut client = MissionServiceClient::new(edge.channel.clone());
    let issuer = identity();
    let stranger = DevIssuer::create_or_load(&std::env::temp_dir().join(format!("stranger-{}", now()))).unwrap();
    let valid = issuer.player("player-1");
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered = format!("{head}.{}.{signature}", b64(claims("player-2").to_string().as_bytes()));
    let header = |alg: &str| b64(json!({ "alg": alg, "typ": "JWT", "kid": issuer.kid() }).to_string().as_bytes());
    let body = b64(claims("player-1").to_string().as_bytes());
    let with = |claim: &str, value: serde_json::Value| {
        let mut claims = claims("player-1");
        claims[claim] = value;
        issuer.sign(&claims)
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "missing bearer token: send `authorization: Bearer <JWT>`"),
        ("not a bearer", Some("Basic cGxheWVyOnB3".into()), "malformed bearer token"),
        ("not a JWT", Some("Bearer not-a-jwt".into()), "malformed bearer token"),
        (
            "alg none",
            Some(format!("Bearer {}.{body}.", header("none"))),
            "token algorithm none is not accepted (RS256 or ES256 only)",
        ),
        (
            "HS256 with the public key",
            Some(format!("Bearer {}.{body}.{}", header("HS256"), b64(b"signed-with-the-jwks"))),
            "token algorithm HS256 is not accepted (RS256 or ES256 only)",
        ),
        ("unknown kid", Some(format!("Bearer {}", stranger.player("player-1"))), "token signed with an unknown key"),
        ("tampered claims", Some(format!("Bearer {tampered}")), "token signature is invalid"),
        ("expired", Some(format!("Bearer {}", with("exp", json!(now() - 120)))), "token has expired"),
        ("not yet valid", Some(format!("Bearer {}", with("nbf", json!(now() + 120)))), "token is not valid yet"),
        (
            "foreign issuer",
            Some(format!("Bearer {}", with("iss", json!("https://evil.example")))),
            "token issuer is not trusted",
        ),
        ("other audience", Some(format!("Bearer {}", with("aud", json!("another-api")))), "token audience is wrong"),
        ("huge", Some(format!("Bearer {}", "a".repeat(9000))), "malformed bearer token"),
    ];
    for (case, authorization, message) in cases {
        let mut request = tonic::Request::new(list_missions("player-1"));
        if let Some(value) = authorization {
            request.metadata_mut().insert("authorization", value.parse().unwrap());
        }
        let status = client.list_missions(request).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::Unauthenticated, message), "{case}");
    }
    // A small clock skew is tolerated.
    let skewed = with("exp", json!(now() - 10));
    assert!(client.list_missions(authorized(list_missions("player-1"), &skewed)).await.is_ok());
}

#[tokio::test]
async fn health_and_reflection_stay_open_with_no_token() {
    let edge = edge(|_| {}).await;
    let mut health = HealthClient::new(edge.channel.clone());
    let request = HealthCheckRequest { service: String::new() };
    assert!(health.check(request).await.is_ok());
    // grpcurl's `list` is a reflection call with no token.
    let list = tokio::process::Command::new(testkit::workspace_root().join(".tools/bin/grpcurl"))
        .args(["-plaintext", edge.url.trim_start_matches("http://"), "list"])
        .output()
        .await;
    if let Ok(output) = list {
        let listed = String::from_utf8_lossy(&output.stdout);
        assert!(listed.contains("game.mission.v1.MissionService"), "{listed}");
    }
}

#[tokio::test]
async fn roles_open_only_their_methods_and_gift_exchange_is_never_forwarded() {
    let edge = edge(|_| {}).await;
    let mut settlements = SettlementServiceClient::new(edge.channel.clone());
    let request = settlement::ListSettlementsRequest::default().by_player("player-1");
    let status = settlements.list_settlements(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("needs the operator role"), "{}", status.message());

    let mut missions = MissionServiceClient::new(edge.channel.clone());
    let request = pb::AchieveMissionRequest {
        customer_id: "operator".into(),
        mission_code: "FIRST_WIN".into(),
        achievement_id: None,
    };
    let status = missions.achieve_mission(request.by_operator()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "operators never act for players");

    let mut gifts = GiftServiceClient::new(edge.channel.clone());
    let exchange = gift::ExchangeRequest { idempotency_key: "k".into(), ..Default::default() };
    for request in [exchange.clone().by_player("player-1"), exchange.by_operator()] {
        let status = gifts.exchange(request).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("called by the wallet service only"), "{}", status.message());
    }
    let status = gifts.exchange(gift::ExchangeRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "with no token either");
}

#[tokio::test]
async fn the_programme_reaches_the_mission_service_for_operators_only() {
    let edge = edge(|_| {}).await;
    let mut operators = ProgrammeServiceClient::new(edge.channel.clone());

    let events = operators.list_events(programme::ListEventsRequest {}.by_operator()).await.unwrap().into_inner();
    let status = operators.list_events(programme::ListEventsRequest {}.by_player("player-1")).await.unwrap_err();
    let mut health = HealthClient::new(edge.channel.clone());
    let serving = eventually_serving(&mut health, "game.programme.v1.ProgrammeService").await;

    let ids: Vec<&str> = events.programme_events.iter().map(|e| e.programme_event_id.as_str()).collect();
    assert_eq!(ids, ["LAUNCH"], "served by the mission service behind the gateway");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("needs the operator role"), "refused at the edge: {}", status.message());
    assert!(serving, "the gateway reports the programme healthy with the mission service");
}

#[tokio::test]
async fn the_gift_catalogue_reaches_the_gift_service_for_operators_only_and_the_vendor_simulation_never() {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut config = ::gift::GiftConfig::from(service_config(&broker, store.sqlite_url("gift")));
    config.vendor_simulation = true;
    let gift_service = Running::serve(::gift::build(config).await.unwrap());
    let edge = edge(|config| {
        for (service, url) in &mut config.upstreams {
            if *service == "game.gift.v1.GiftService" {
                *url = gift_service.url();
            }
        }
    })
    .await;
    let mut operators = CatalogueServiceClient::new(edge.channel.clone());
    let mut vendor = VendorSimulationServiceClient::new(edge.channel.clone());

    let catalogue =
        operators.list_catalogue(gift_admin::ListCatalogueRequest {}.by_operator()).await.unwrap().into_inner();
    let player = operators.list_catalogue(gift_admin::ListCatalogueRequest {}.by_player("player-1")).await.unwrap_err();
    let simulation =
        vendor.get_vendor_behaviour(gift_admin::GetVendorBehaviourRequest {}.by_operator()).await.unwrap_err();
    let mut health = HealthClient::new(edge.channel.clone());
    let serving = eventually_serving(&mut health, "game.gift.admin.v1.CatalogueService").await;

    assert_eq!(catalogue.products.len(), 5, "served by the gift service behind the gateway");
    assert_eq!(player.code(), Code::PermissionDenied);
    assert!(player.message().contains("needs the operator role"), "refused at the edge: {}", player.message());
    assert_eq!(simulation.code(), Code::Unimplemented, "not forwarded, though gift serves it: {simulation:?}");
    assert!(serving, "the gateway reports the catalogue healthy with the gift service");
}

/// Whether the gateway's health entry for `service` turns SERVING within 5 s.
async fn eventually_serving(health: &mut HealthClient<Channel>, service: &str) -> bool {
    use tonic_health::pb::health_check_response::ServingStatus;
    for _ in 0..50 {
        let answer = health.check(HealthCheckRequest { service: service.into() }).await;
        if answer.is_ok_and(|a| a.into_inner().status() == ServingStatus::Serving) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_caller_over_the_rate_limit_is_told_when_to_retry_and_recovers() {
    let edge = edge(|c| c.rate_limit = RateLimit { per_second: 1.0, burst: 3 }).await;
    let mut client = MissionServiceClient::new(edge.channel.clone());
    // The burst passes; the calls after it are refused until a second has
    // refilled the bucket (however slow the machine, 20 calls outrun it).
    let mut refused = None;
    for _ in 0..20 {
        if let Err(status) = client.list_missions(list_missions("player-1").by_player("player-1")).await {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("the rate limit refused a call");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().starts_with("rate limit exceeded for calls of player-1; retry after"),
        "{}",
        status.message()
    );
    let retry_after: u64 = status.metadata().get("retry-after-ms").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 1000, "{retry_after}");

    // Operators see it on the gateway's /metrics.
    let metrics = platform::metrics::metrics().encode();
    assert!(metrics.contains("rewards_edge_refusals_total{reason=\"rate_limited\"}"), "{metrics}");

    // Another player is not affected.
    client.list_missions(list_missions("player-2").by_player("player-2")).await.unwrap();
    // After the advertised wait the caller is served again.
    tokio::time::sleep(Duration::from_millis(retry_after + 50)).await;
    client.list_missions(list_missions("player-1").by_player("player-1")).await.unwrap();
}

#[tokio::test]
async fn oversized_and_garbage_requests_are_refused_without_reaching_the_service() {
    let edge = edge(|c| {
        c.max_message_bytes = 1024;
        c.rate_limit = RateLimit { per_second: 1e6, burst: 1_000_000 };
    })
    .await;
    let mut client = MissionServiceClient::new(edge.channel.clone());
    let status = client.list_missions(list_missions(&"x".repeat(2000)).by_player("player-1")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "the request message exceeds the limit of 1024 bytes");

    // Raw HTTP/2 bodies that are not gRPC messages, or not protobuf.
    let token = identity().player("player-1");
    let garbage: [(&[u8], Code); 4] = [
        (b"\x00\x00\x00\x00\x10short", Code::InvalidArgument),
        (b"\x09\x00\x00\x00\x01x", Code::InvalidArgument),
        (b"\x00\x00", Code::InvalidArgument),
        (b"\x00\x00\x00\x00\x04\xff\xff\xff\xff", Code::Internal),
    ];
    for (body, code) in garbage {
        let status = raw_call(&edge.url, "/game.mission.v1.MissionService/ListMissions", &token, body).await;
        assert_eq!(status.code(), code, "{body:?}: {status:?}");
    }
    // Still serving.
    client.list_missions(list_missions("player-1").by_player("player-1")).await.unwrap();
}

#[tokio::test]
async fn a_deadline_travels_to_the_service_and_expires_as_deadline_exceeded() {
    let edge = edge(|_| {}).await;
    let mut client = MissionServiceClient::new(edge.channel.clone());
    let mut request = list_missions("player-1").by_player("player-1");
    request.set_timeout(Duration::from_secs(5));
    client.list_missions(request).await.unwrap();

    let mut request = list_missions("player-1").by_player("player-1");
    request.set_timeout(Duration::from_nanos(1));
    let status = client.list_missions(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled), "{status:?}");
}

#[tokio::test]
async fn a_services_refusal_is_passed_on_as_a_trailers_only_answer() {
    use tower::ServiceExt as _;
    let edge = edge(|_| {}).await;
    // Another player's missions: the edge forwards it, the mission service refuses it.
    let message = prost::Message::encode_to_vec(&list_missions("player-2"));
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&message);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{}/game.mission.v1.MissionService/ListMissions", edge.url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {}", identity().player("player-1")))
        .body(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(framed))))
        .unwrap();
    let response = edge.channel.clone().oneshot(request).await.unwrap();
    let status = tonic::Status::from_header_map(response.headers()).expect("the status in the answer's headers");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Its HEADERS frame ended the stream: no empty DATA frame after it,
    // which gRPC's C core (Python, C++, Ruby clients) takes for a broken stream.
    assert!(http_body::Body::is_end_stream(response.body()), "the answer went on after its status");
}

/// One unary call with `body` as its raw HTTP/2 DATA, and the status it ends with.
async fn raw_call(url: &str, path: &str, token: &str, body: &'static [u8]) -> tonic::Status {
    use tower::ServiceExt as _;
    let channel = Channel::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from_static(body))))
        .unwrap();
    let response = channel.oneshot(request).await.unwrap();
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return status;
    }
    let collected = http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    tonic::Status::from_header_map(&trailers).unwrap_or_else(|| tonic::Status::ok(""))
}

/// Serves `document` (read at each request) as a JWKS over plain HTTP.
async fn jwks_endpoint(document: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let document = document.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{document}",
                    document.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

fn keys_of(issuer: &DevIssuer) -> Vec<serde_json::Value> {
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(issuer.jwks_path()).unwrap()).unwrap();
    document["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_key_published_at_the_jwks_url_is_trusted_without_a_restart() {
    let old = identity();
    let new =
        DevIssuer::create_or_load(&std::env::temp_dir().join(format!("rotated-{}", uuid::Uuid::new_v4()))).unwrap();
    let document = std::sync::Arc::new(std::sync::Mutex::new(json!({ "keys": keys_of(old) }).to_string()));
    let url = jwks_endpoint(document.clone()).await;
    let auth = platform::auth::AuthConfig { jwks: platform::auth::JwksSource::Url(url), ..old.auth_config() };

    // The gateway and the service behind it both read the keys from the URL.
    let broker = Broker::start().await;
    let store = TempStore::new();
    let mut service = service_config(&broker, store.sqlite_url("mission"));
    service.auth = Some(auth.clone());
    let mission = Running::serve(mission::build(service).await.unwrap());
    let edge = edge(|c| {
        c.auth = Some(auth);
        for (service, target) in &mut c.upstreams {
            if *service == "game.mission.v1.MissionService" {
                *target = mission.url();
            }
        }
    })
    .await;
    let mut client = MissionServiceClient::new(edge.channel.clone());
    client.list_missions(list_missions("player-1").by_player("player-1")).await.unwrap();
    let rotated = new.player("player-1");
    let status = client.list_missions(authorized(list_missions("player-1"), &rotated)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "token signed with an unknown key"));

    // The identity provider publishes its next key. An unknown key makes
    // the JWKS be read again, at most once per 10 s (so forged kids cannot
    // hammer the endpoint): after that, the new key is trusted everywhere.
    let both = [keys_of(old), keys_of(&new)].concat();
    *document.lock().unwrap() = json!({ "keys": both }).to_string();
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    client.list_missions(authorized(list_missions("player-1"), &rotated)).await.unwrap();
    client.list_missions(list_missions("player-1").by_player("player-1")).await.unwrap();
}
