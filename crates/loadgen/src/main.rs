//! The `loadgen` binary: drives one gRPC method against any address, open
//! loop at a fixed rate or closed loop at a fixed concurrency, and prints
//! the latency percentiles (and, with `--json`, the whole report).

use std::process::ExitCode;
use std::time::Duration;

use loadgen::grpc::{Target, decode_hex, parse_header};
use loadgen::methods::Method;
use loadgen::run::{self, ClosedLoop, OpenLoop};

const USAGE: &str = "\
usage:
  loadgen [--addr URL] [--method NAME] [--rate N | --concurrency N] [--duration SECS]
          [--max-in-flight N] [--connections N] [--timeout-ms N] [--header NAME=VALUE]...
          [--service S] [--customer ID] [--prefix P] [--path /pkg.Service/Method --body-hex HEX] [--json]
      --addr         the server (default http://127.0.0.1:8080, the gateway)
      --method       health (grpc.health.v1 Check of --service, default \"\"), achieve (a new mission
                     per call, players <prefix>-N), definitions, mypage and wallet (of --customer), or
                     raw (--path and --body-hex: any unary method, the request encoded as protobuf)
      --rate         open loop: calls start at this rate whatever the server does, and latency is
                     measured from each call's intended start (default 1000)
      --concurrency  closed loop instead: this many calls in flight, each starting when one ends
      --duration     seconds (default 10)
      --max-in-flight  open loop: calls due beyond this wait for a slot, which counts in their latency (default 1024)
      --header       metadata on every call, e.g. --header 'authorization=Bearer <jwt>' (repeatable)
  loadgen serve-echo [--addr 127.0.0.1:50099]
      serve grpc.health.v1 only: the bare tonic baseline (--method health --service loadgen.Echo)";

#[derive(Debug)]
struct Options {
    addr: String,
    method: String,
    rate: f64,
    concurrency: Option<usize>,
    duration: Duration,
    max_in_flight: usize,
    connections: usize,
    timeout: Duration,
    headers: Vec<(String, String)>,
    service: String,
    customer: String,
    prefix: String,
    path: Option<String>,
    body: bytes::Bytes,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        addr: "http://127.0.0.1:8080".into(),
        method: "health".into(),
        rate: 1000.0,
        concurrency: None,
        duration: Duration::from_secs(10),
        max_in_flight: 1024,
        connections: 2,
        timeout: Duration::from_secs(10),
        headers: Vec::new(),
        service: String::new(),
        customer: "player-1".into(),
        prefix: format!("loadgen-{}", std::process::id()),
        path: None,
        body: bytes::Bytes::new(),
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| format!("{arg} needs a value"));
        let number = |text: String| text.parse::<f64>().map_err(|_| format!("{arg}: {text:?} is not a number"));
        let count = |text: String| text.parse::<usize>().map_err(|_| format!("{arg}: {text:?} is not a count"));
        match arg.as_str() {
            "--addr" => options.addr = value()?,
            "--method" => options.method = value()?,
            "--rate" => options.rate = number(value()?)?,
            "--concurrency" => options.concurrency = Some(count(value()?)?),
            "--duration" => options.duration = Duration::from_secs_f64(number(value()?)?.max(0.0)),
            "--max-in-flight" => options.max_in_flight = count(value()?)?,
            "--connections" => options.connections = count(value()?)?,
            "--timeout-ms" => options.timeout = Duration::from_millis(count(value()?)? as u64),
            "--header" => options.headers.push(parse_header(&value()?)?),
            "--service" => options.service = value()?,
            "--customer" => options.customer = value()?,
            "--prefix" => options.prefix = value()?,
            "--path" => options.path = Some(value()?),
            "--body-hex" => options.body = decode_hex(&value()?)?,
            "--json" => options.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !options.addr.contains("://") {
        options.addr = format!("http://{}", options.addr);
    }
    Ok(options)
}

fn method(options: &Options) -> Result<Method, String> {
    Ok(match options.method.as_str() {
        "health" => Method::Health { service: options.service.clone() },
        "achieve" => Method::Achieve { prefix: options.prefix.clone() },
        "definitions" => Method::Definitions,
        "mypage" => Method::MyPage { customer: options.customer.clone() },
        "wallet" => Method::Wallet { customer: options.customer.clone() },
        "raw" => Method::Raw {
            path: options.path.clone().ok_or("--method raw needs --path /package.Service/Method")?,
            body: options.body.clone(),
        },
        other => return Err(format!("unknown method {other:?}; one of {}", Method::NAMES.join(", "))),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve-echo") {
        let addr = match args.get(1).map(String::as_str) {
            Some("--addr") => args.get(2).cloned().unwrap_or_default(),
            _ => "127.0.0.1:50099".into(),
        };
        let result = match addr.parse() {
            Ok(addr) => loadgen::echo::serve_until_ctrl_c(addr).await,
            Err(_) => Err(anyhow::anyhow!("{addr:?} is not host:port")),
        };
        return finish(result);
    }
    let (options, method) = match parse(&args).and_then(|o| method(&o).map(|m| (o, m))) {
        Ok(parsed) => parsed,
        Err(error) => {
            if error.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("loadgen: {error}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    finish(drive(&options, method).await)
}

async fn drive(options: &Options, method: Method) -> anyhow::Result<()> {
    let target = Target::connect(&options.addr, options.connections, &options.headers).await?;
    let method = std::sync::Arc::new(method);
    let call = move |i| {
        let (target, method) = (target.clone(), std::sync::Arc::clone(&method));
        async move { method.call(&target, i).await }
    };
    let report = match options.concurrency {
        Some(concurrency) => {
            let config = ClosedLoop { concurrency, duration: options.duration, timeout: options.timeout };
            run::closed_loop(&config, call).await
        }
        None => {
            let config = OpenLoop {
                rate: options.rate,
                duration: options.duration,
                max_in_flight: options.max_in_flight,
                timeout: options.timeout,
            };
            run::open_loop(&config, move |i, _| call(i)).await
        }
    };
    let l = &report.latency;
    println!(
        "{} {}: {} ok of {} at {:.0}/s{}; latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}{}",
        options.method,
        options.addr,
        report.ok,
        report.sent,
        report.achieved_rate,
        match options.concurrency {
            Some(c) => format!(" ({c} in flight)"),
            None => format!(" (offered {:.0}/s)", report.offered_rate),
        },
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        if report.failed.is_empty() { String::new() } else { format!("; failed {:?}", report.failed) },
    );
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
