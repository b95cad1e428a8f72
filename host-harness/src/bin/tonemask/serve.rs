//! `tonemask serve`: a media node driven over the rtpengine ng protocol.

use crate::args::*;
use crate::common::*;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::serve::{serve, ServeConfig};

/// Arguments of `tonemask serve` (names as rtpengine's where they mean the same).
#[derive(clap::Args)]
pub struct Args {
    /// TOML file of options, with the same names as the command line (`interface =
    /// "10.0.0.5"`, `port-min = 30000`, `key = "/etc/tonemask/node.key"`, …); options given
    /// on the command line win
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the ng control protocol is served (UDP), as Kamailio's `rtpengine_sock` and
    /// OpenSIPS's `rtpengine_sock` name it
    #[arg(long, default_value = "127.0.0.1:2223", value_name = "ADDR:PORT")]
    listen_ng: std::net::SocketAddr,
    /// The IP address media is received on and announced in the SDP
    #[arg(long, value_name = "IP")]
    interface: std::net::IpAddr,
    /// Lowest UDP port for media
    #[arg(long, default_value_t = 30000, value_name = "PORT")]
    port_min: u16,
    /// Highest UDP port for media
    #[arg(long, default_value_t = 40000, value_name = "PORT")]
    port_max: u16,
    #[command(flatten)]
    sink: SinkArgs,
    /// Serve Prometheus `/metrics` and `/health` over HTTP here (e.g. 127.0.0.1:9090)
    #[arg(long, value_name = "ADDR:PORT")]
    listen_http: Option<std::net::SocketAddr>,
    /// Processor public key file (`tonemask keygen --processor`) that card captures are
    /// sealed to; enables the `capture` control command (start or cancel a capture in a
    /// call, for the agent's desktop)
    #[arg(long, value_name = "FILE")]
    processor_key: Option<PathBuf>,
    /// End a call whose media has stopped for this many seconds
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    idle_s: f64,
    /// Drop a call whose offer has not been answered within this many seconds, releasing its
    /// ports (a proxy that lost the call never sends its delete)
    #[arg(long, default_value_t = 3600.0, value_name = "S")]
    offer_timeout_s: f64,
    #[command(flatten)]
    call: CallArgs,
}

/// The command line with `serve --config FILE` expanded: the file's options go in right after
/// `serve`, so that those given on the command line (later) win. Keys must be `serve`'s own
/// options (or the global `plugin`); values strings, numbers or booleans (`true` = a flag).
pub fn expand_config(
    args: Vec<std::ffi::OsString>,
    cli: &clap::Command,
) -> Result<Vec<std::ffi::OsString>> {
    let Some(at) = args.iter().position(|a| a == "serve") else {
        return Ok(args);
    };
    let file = args[at..].iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        if a == "--config" {
            args.get(at + i + 1).cloned()
        } else {
            a.strip_prefix("--config=").map(Into::into)
        }
    });
    let Some(file) = file else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the config file {}", file.to_string_lossy()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", file.to_string_lossy()))?;
    let serve = cli
        .find_subcommand("serve")
        .ok_or_else(|| anyhow::anyhow!("no serve command"))?;
    let known: Vec<&str> = serve
        .get_arguments()
        .chain(cli.get_arguments())
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config")
        .collect();
    let mut extra = Vec::new();
    for (key, value) in table {
        if !known.contains(&key.as_str()) {
            bail!(
                "{}: unknown option `{key}` (the options of `tonemask serve --help`, without the dashes)",
                file.to_string_lossy()
            );
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(true) => {
                extra.push(format!("--{key}").into());
                continue;
            }
            toml::Value::Boolean(false) => continue,
            other => bail!(
                "{}: `{key}` must be a string, a number or a boolean, not {}",
                file.to_string_lossy(),
                other.type_str()
            ),
        };
        extra.push(format!("--{key}").into());
        extra.push(value.into());
    }
    let mut out = args[..=at].to_vec();
    out.extend(extra);
    out.extend_from_slice(&args[at + 1..]);
    Ok(out)
}

/// Runs `tonemask serve` until SIGTERM, SIGINT or SIGHUP (a closed terminal: every call is
/// still ended cleanly, not cut off); returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    args.sink.check()?;
    if args.call.call_id.is_some() {
        bail!("--call-id does not apply to serve: each call's id is its SIP Call-ID");
    }
    let mut settings = args.call.settings_or(Digits::Hidden)?;
    settings.call_id = String::new();
    let keys = Arc::new(KeyRing::load(&args.sink.key)?);
    let plugin = Arc::new(load_plugin(plugin)?);
    let cfg = ServeConfig {
        listen_ng: args.listen_ng,
        interface: args.interface,
        port_min: args.port_min,
        port_max: args.port_max,
        settings,
        events_file: args.sink.events,
        events_url: args.sink.events_url,
        dtmf_log_dest: args.sink.dtmf_log_dest,
        idle: seconds(args.idle_s, "--idle-s")?,
        offer_timeout: seconds(args.offer_timeout_s, "--offer-timeout-s")?,
        listen_http: args.listen_http,
        processor_key: args
            .processor_key
            .as_deref()
            .map(tonemask_harness::card::load_public)
            .transpose()?,
    };
    let shutdown = stop_on_signals()?;
    serve(plugin, keys, &cfg, &shutdown)?;
    Ok(0)
}
