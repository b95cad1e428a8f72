//! `tonemask serve`: a media node driven over the rtpengine ng protocol.

use crate::args::*;
use crate::common::*;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::serve::{serve, ServeConfig};

/// Arguments of `tonemask serve` (names as rtpengine's where they mean the same).
#[derive(clap::Args)]
pub struct Args {
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
    /// End a call whose media has stopped for this many seconds
    #[arg(long, default_value_t = 60.0, value_name = "S")]
    idle_s: f64,
    #[command(flatten)]
    call: CallArgs,
}

/// Runs `tonemask serve` until SIGTERM or SIGINT; returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    args.sink.check()?;
    if args.call.call_id.is_some() {
        bail!("--call-id does not apply to serve: each call's id is its SIP Call-ID");
    }
    let mut settings = args.call.settings()?;
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
        idle: seconds(args.idle_s, "--idle-s")?,
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("installing the signal handler")?;
    }
    serve(plugin, keys, &cfg, &shutdown)?;
    Ok(0)
}
