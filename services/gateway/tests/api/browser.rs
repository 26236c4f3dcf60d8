//! What browsers get from the real gateway, over HTTP/1.1 as a browser
//! speaks to it: gRPC-Web (binary and text) for the player APIs under every
//! edge rule, `WatchMyPage` streamed and ended when its token expires, CORS
//! for the configured origins only, the page and the development sign-in.

use std::path::PathBuf;
use std::time::Duration;

use api::game::mission::v1 as missions;
use api::game::mypage::v1 as pages;
use base64::Engine as _;
use bytes::{Buf as _, Bytes};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use platform::CancellationToken;
use prost::Message as _;
use testkit::{Broker, Running, TempStore, identity, service_config};

/// The origin of a page served elsewhere (a development server).
const ALLOWED: &str = "http://localhost:5173";

struct Browserland {
    port: u16,
    site: PathBuf,
    _broker: Broker,
    _services: (Running, Running),
    _store: TempStore,
    stop: CancellationToken,
}

impl Drop for Browserland {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.site);
    }
}

/// The gateway, serving a small page, in front of real mission and mypage services.
async fn gateway(tune: impl FnOnce(&mut gateway::GatewayConfig)) -> Browserland {
    let broker = Broker::start().await;
    let store = TempStore::new();
    let missions = Running::serve(mission::build(service_config(&broker, store.sqlite_url("mission"))).await.unwrap());
    let pages = Running::serve(mypage::build(service_config(&broker, store.sqlite_url("mypage"))).await.unwrap());
    let site = std::env::temp_dir().join(format!("page-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(site.join("index.html"), "<!doctype html><title>my page</title>").unwrap();
    std::fs::write(site.join("assets/app-1a2b.js"), "console.log('my page')").unwrap();
    std::fs::write(site.join("assets/app-1a2b.js.gz"), b"\x1f\x8bnot really gzip").unwrap();

    let mut config = gateway::GatewayConfig::local();
    config.addr = ([127, 0, 0, 1], 0).into();
    config.shutdown_grace = Duration::from_secs(1);
    config.auth = Some(identity().auth_config());
    config.web.root = Some(site.clone());
    config.web.cors_origins = vec![ALLOWED.into()];
    for (service, url) in &mut config.upstreams {
        *url = match *service {
            "game.mission.v1.MissionService" => missions.url(),
            "game.mypage.v1.MyPageService" => pages.url(),
            _ => "http://127.0.0.1:1".into(),
        };
    }
    tune(&mut config);
    let app = gateway::App::build(config).await.unwrap();
    let port = app.port();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
    Browserland { port, site, _broker: broker, _services: (missions, pages), _store: store, stop }
}

impl Browserland {
    /// Sends `request` over a fresh HTTP/1.1 connection, as a browser would.
    async fn send(&self, mut request: Request<Full<Bytes>>) -> Response<Incoming> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        tokio::spawn(connection);
        request.headers_mut().insert(http::header::HOST, format!("127.0.0.1:{}", self.port).parse().unwrap());
        sender.send_request(request).await.unwrap()
    }

    /// A gRPC-Web call of `method` with `message`, `text` for grpc-web-text.
    async fn grpc_web(
        &self,
        method: &str,
        message: &impl prost::Message,
        token: Option<&str>,
        text: bool,
        extra: &[(&str, &str)],
    ) -> Response<Incoming> {
        let mut body = vec![0u8];
        let bytes = message.encode_to_vec();
        body.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&bytes);
        let (content_type, body) = if text {
            ("application/grpc-web-text", base64::engine::general_purpose::STANDARD.encode(body).into_bytes())
        } else {
            ("application/grpc-web+proto", body)
        };
        let mut request = Request::post(method).header("content-type", content_type).header("x-grpc-web", "1");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        self.send(request.body(Full::new(Bytes::from(body))).unwrap()).await
    }
}

/// The messages and the trailers of a gRPC-Web answer (trailers-only
/// answers carry their status in the headers).
#[derive(Debug)]
struct Answer {
    messages: Vec<Bytes>,
    status: String,
    message: String,
}

async fn answer(response: Response<Incoming>) -> Answer {
    let text = response.headers()["content-type"].to_str().unwrap().starts_with("application/grpc-web-text");
    let headers = response.headers().clone();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    let mut body = if text {
        // Each message of a text answer is base64 of its own.
        let mut decoded = Vec::new();
        let mut rest = &raw[..];
        while !rest.is_empty() {
            let end = rest.windows(2).position(|w| w[0] == b'=' && w[1] != b'=').map_or(rest.len(), |i| i + 1);
            let chunk = &rest[..end];
            decoded.extend(base64::engine::general_purpose::STANDARD.decode(chunk).unwrap());
            rest = &rest[end..];
        }
        Bytes::from(decoded)
    } else {
        raw
    };
    parse_frames(&mut body, &headers)
}

fn parse_frames(body: &mut Bytes, headers: &HeaderMap) -> Answer {
    let mut answer = Answer {
        messages: Vec::new(),
        status: headers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default(),
        message: headers.get("grpc-message").map(|v| v.to_str().unwrap().replace("%20", " ")).unwrap_or_default(),
    };
    while body.len() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let frame = body.split_to(length);
        if flag & 0x80 == 0 {
            answer.messages.push(frame);
            continue;
        }
        for line in String::from_utf8_lossy(&frame).split("\r\n") {
            if let Some((name, value)) = line.split_once(':') {
                match name.trim() {
                    "grpc-status" => answer.status = value.trim().to_owned(),
                    "grpc-message" => answer.message = value.trim().replace("%20", " "),
                    _ => {}
                }
            }
        }
    }
    answer
}

const DEFINITIONS: &str = "/game.mission.v1.MissionService/ListMissionDefinitions";
const LIST: &str = "/game.mission.v1.MissionService/ListMissions";
const WATCH: &str = "/game.mypage.v1.MyPageService/WatchMyPage";

#[tokio::test]
async fn a_browser_calls_the_player_apis_with_grpc_web_binary_and_text() {
    let gateway = gateway(|_| {}).await;
    let token = identity().player("player-1");
    for text in [false, true] {
        let response =
            gateway.grpc_web(DEFINITIONS, &missions::ListMissionDefinitionsRequest {}, Some(&token), text, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer = answer(response).await;
        assert_eq!(answer.status, "0", "{answer:?}");
        let definitions = missions::ListMissionDefinitionsResponse::decode(answer.messages[0].clone()).unwrap();
        assert!(definitions.definitions.iter().any(|d| d.mission_code == "FIRST_WIN"), "text: {text}");
    }
}

#[tokio::test]
async fn grpc_web_meets_every_edge_rule() {
    let gateway = gateway(|config| config.max_message_bytes = 1024).await;
    let request = missions::ListMissionsRequest { customer_id: "player-2".into() };

    let anonymous = answer(gateway.grpc_web(LIST, &request, None, false, &[]).await).await;
    assert_eq!(anonymous.status, "16", "{anonymous:?}");

    let other = answer(gateway.grpc_web(LIST, &request, Some(&identity().player("player-3")), false, &[]).await).await;
    assert_eq!(other.status, "7", "another player's missions: {other:?}");

    let own = answer(gateway.grpc_web(LIST, &request, Some(&identity().player("player-2")), true, &[]).await).await;
    assert_eq!(own.status, "0", "{own:?}");

    let huge = missions::ListMissionsRequest { customer_id: "x".repeat(4096) };
    let too_large = answer(gateway.grpc_web(LIST, &huge, Some(&identity().player("player-2")), false, &[]).await).await;
    assert_eq!(too_large.status, "8", "{too_large:?}");
}

#[tokio::test]
async fn only_the_player_apis_are_served_over_grpc_web() {
    let gateway = gateway(|_| {}).await;
    let operator = identity().operator();
    let settlements = answer(
        gateway
            .grpc_web(
                "/game.settlement.v1.SettlementService/ListSettlements",
                &missions::ListMissionDefinitionsRequest {},
                Some(&operator),
                false,
                &[],
            )
            .await,
    )
    .await;
    assert_eq!(settlements.status, "7", "{settlements:?}");
    assert!(settlements.message.contains("not served over gRPC-Web"), "{settlements:?}");
    let health = answer(
        gateway
            .grpc_web("/grpc.health.v1.Health/Check", &missions::ListMissionDefinitionsRequest {}, None, false, &[])
            .await,
    )
    .await;
    assert_eq!(health.status, "7", "{health:?}");
}

#[tokio::test]
async fn a_watch_streams_pages_over_grpc_web_and_ends_unauthenticated_when_its_token_expires() {
    let gateway = gateway(|_| {}).await;
    // Expiring now, within the verifiers' leeway: accepted, then ended.
    let token = identity().token("player-4", &["player"], Duration::ZERO);
    let request = pages::WatchMyPageRequest { customer_id: "player-4".into() };
    let response = gateway.grpc_web(WATCH, &request, Some(&token), false, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(10), answer(response)).await.expect("the watch ends");
    assert_eq!(ended.status, "16", "{ended:?}");
    assert!(ended.message.contains("expired"), "{ended:?}");
    let page = pages::WatchMyPageResponse::decode(ended.messages[0].clone()).unwrap().my_page.unwrap();
    assert_eq!(page.customer_id, "player-4");
}

#[tokio::test]
async fn cors_answers_the_configured_origins_only() {
    let gateway = gateway(|_| {}).await;
    let preflight = |origin: &str| {
        Request::options(LIST)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,x-grpc-web")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let allowed = gateway.send(preflight(ALLOWED)).await;
    assert_eq!(allowed.headers()["access-control-allow-origin"], ALLOWED);
    let allowed_headers = allowed.headers()["access-control-allow-headers"].to_str().unwrap().to_owned();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");
    let foreign = gateway.send(preflight("https://evil.example")).await;
    assert!(!foreign.headers().contains_key("access-control-allow-origin"));

    let token = identity().player("player-5");
    let request = missions::ListMissionsRequest { customer_id: "player-5".into() };
    let from_allowed = gateway.grpc_web(LIST, &request, Some(&token), false, &[("origin", ALLOWED)]).await;
    assert_eq!(from_allowed.headers()["access-control-allow-origin"], ALLOWED);
    let exposed = from_allowed.headers()["access-control-expose-headers"].to_str().unwrap().to_owned();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{exposed}");
    assert_eq!(answer(from_allowed).await.status, "0");

    let own_origin = format!("http://127.0.0.1:{}", gateway.port);
    let same = answer(gateway.grpc_web(LIST, &request, Some(&token), false, &[("origin", &own_origin)]).await).await;
    assert_eq!(same.status, "0", "the page's own origin: {same:?}");

    let foreign = gateway.grpc_web(LIST, &request, Some(&token), false, &[("origin", "https://evil.example")]).await;
    assert!(!foreign.headers().contains_key("access-control-allow-origin"));
    let foreign = answer(foreign).await;
    assert_eq!(foreign.status, "7", "{foreign:?}");
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let gateway = gateway(|config| config.web.cors_origins.clear()).await;
    let preflight = Request::options(LIST)
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(!gateway.send(preflight).await.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_its_assets() {
    let gateway = gateway(|_| {}).await;
    let index = gateway.send(Request::get("/").body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let csp = index.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = index.into_body().collect().await.unwrap().to_bytes();
    assert!(html.starts_with(b"<!doctype html>"));

    let plain = gateway.send(Request::get("/assets/app-1a2b.js").body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(plain.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(plain.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(!plain.headers().contains_key("content-encoding"));
    let gzipped = gateway
        .send(
            Request::get("/assets/app-1a2b.js")
                .header("accept-encoding", "gzip")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert!(gzipped.into_body().collect().await.unwrap().to_bytes().starts_with(b"\x1f\x8b"));

    let missing = gateway.send(Request::get("/../Cargo.toml").body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let settings = gateway.send(Request::get("/web-config.json").body(Full::new(Bytes::new())).unwrap()).await;
    let settings = settings.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&settings).unwrap()["signIn"], "none");
    let sign_in = gateway
        .send(Request::post("/dev/sign-in").body(Full::new(Bytes::from(r#"{"customer_id":"p"}"#))).unwrap())
        .await;
    assert_eq!(sign_in.status(), StatusCode::NOT_FOUND, "no development sign-in unless configured");
}

#[tokio::test]
async fn the_development_sign_in_signs_a_players_token_that_the_edge_accepts() {
    let dir = identity().jwks_path().parent().unwrap().to_owned();
    let gateway = gateway(|config| config.web.dev_sign_in = Some(dir)).await;
    let settings = gateway.send(Request::get("/web-config.json").body(Full::new(Bytes::new())).unwrap()).await;
    let settings = settings.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&settings).unwrap()["signIn"], "development");

    let sign_in = |body: &'static str| Request::post("/dev/sign-in").body(Full::new(Bytes::from(body))).unwrap();
    let signed = gateway.send(sign_in(r#"{"customer_id":"player-6","lifetime_secs":60}"#)).await;
    assert_eq!(signed.status(), StatusCode::OK);
    let signed: serde_json::Value =
        serde_json::from_slice(&signed.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let token = signed["token"].as_str().unwrap();
    let request = missions::ListMissionsRequest { customer_id: "player-6".into() };
    assert_eq!(answer(gateway.grpc_web(LIST, &request, Some(token), false, &[]).await).await.status, "0");

    for bad in [r#"{"customer_id":"no spaces"}"#, r#"{"customer_id":"p","lifetime_secs":999999}"#, "[]"] {
        let refused = gateway.send(sign_in(bad)).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn the_development_sign_in_is_never_served_beyond_loopback() {
    let dir = identity().jwks_path().parent().unwrap().to_owned();
    let mut config = gateway::GatewayConfig::local();
    config.addr = ([0, 0, 0, 0], 0).into();
    config.web.dev_sign_in = Some(dir);
    let error = gateway::App::build(config).await.unwrap_err();
    assert!(format!("{:?}", error).contains("DevSignInExposed"), "{error:?}");
}

#[tokio::test]
async fn plain_grpc_over_http1_is_told_it_needs_http2() {
    let gateway = gateway(|_| {}).await;
    let request = Request::post(DEFINITIONS)
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let response = gateway.send(request).await;
    assert_eq!(response.status(), StatusCode::HTTP_VERSION_NOT_SUPPORTED);
}
