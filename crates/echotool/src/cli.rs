//! Every flag, defined and documented once: `--help` is the manual.

use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use echotool_core::{Endpoint, Registry};

/// Echo servers and clients over TCP, UDP, TLS and QUIC: sockets made tangible, protocols
/// compared side by side.
#[derive(Debug, Parser)]
#[command(
    name = "echotool",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Logging flags, accepted by every subcommand.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that control log output.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// More output: -v shows connection details and debug logs, -vv everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: -q shows only errors.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// Log format: text for people, json (one object per line) for machines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Listen and echo every byte back to every client until Ctrl-C.
    ///
    /// Prints `listening on PROTO://ADDR` to stderr once it accepts connections (with the real
    /// port when you ask for port 0), and a summary per listener when it stops.
    Serve(ServeArgs),
    /// Connect to an echo server: send what you type (or pipe in), show what comes back.
    ///
    /// On a terminal it is a seesaw: each line is sent and its echo printed before the next.
    /// In a pipe it streams: `printf 'a\nb\n' | echotool connect` prints exactly `a\nb\n`,
    /// binary-safe, and exits once the echo of everything sent has arrived.
    Connect(ConnectArgs),
}

/// `echotool serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: HOST:PORT, [V6]:PORT, :PORT, or a URL such as udp://[::1]:5555.
    /// Repeat for several listeners in one process. Default: loopback, port 5555.
    #[arg(short, long = "listen", value_name = "ADDR|URL", value_parser = parse_endpoint)]
    pub listen: Vec<Endpoint>,
    /// Protocol for addresses given without a URL scheme.
    #[arg(short, long, value_name = "PROTO", default_value = "tcp")]
    pub proto: String,
    /// Most connections open at once, per listener.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_conns: usize,
    /// What to do with connections beyond --max-conns: wait in the backlog, or refuse at once.
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = OnLimitArg::Wait)]
    pub on_limit: OnLimitArg,
    /// Close a connection that sends nothing (or reads nothing back) for this long; 0 = never.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "300s")]
    pub idle_timeout: Duration,
    /// On Ctrl-C or SIGTERM, how long in-flight echoes may take before connections are cut.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub drain_timeout: Duration,
    /// Length of the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub backlog: u32,
    /// Turn off TCP_NODELAY (on by default), letting the kernel coalesce small writes.
    #[arg(long)]
    pub nagle: bool,
    /// Socket receive buffer (SO_RCVBUF), e.g. 4M; the kernel's default otherwise.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub recv_buffer: Option<usize>,
    /// Socket send buffer (SO_SNDBUF), e.g. 4M; the kernel's default otherwise.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub send_buffer: Option<usize>,
    /// Datagram protocols: sockets sharing the port (SO_REUSEPORT). [default: one per CPU]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,
    /// UDP: echo at most this many datagrams per second per source address; the rest are
    /// dropped and counted. Off by default.
    #[arg(long, value_name = "PACKETS_PER_SEC", value_parser = clap::value_parser!(u32).range(1..))]
    pub udp_rate_limit: Option<u32>,
}

/// The connection-limit policy, as typed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnLimitArg {
    /// New connections wait in the kernel's backlog until one closes.
    Wait,
    /// New connections are accepted and closed at once.
    Refuse,
}

/// `echotool connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server: HOST:PORT, [V6]:PORT, :PORT, or a URL such as tcp://127.0.0.1:5555.
    /// Default: 127.0.0.1:5555 (::1 for tcp6).
    #[arg(value_name = "ADDR|URL", value_parser = parse_endpoint)]
    pub addr: Option<Endpoint>,
    /// Protocol, unless the address is a URL.
    #[arg(short, long, value_name = "PROTO", default_value = "tcp")]
    pub proto: String,
    /// Send this text (plus a newline) instead of reading standard input.
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,
    /// With --message: how many times to send it, each echo awaited before the next.
    #[arg(
        short,
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "message"
    )]
    pub count: u64,
    /// Limit for connecting and for each echo; 0 waits forever.
    /// [default: 5s, 1s for datagram protocols]
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// lines: send a line, wait for its echo, repeat. pipe: stream everything, then half-close.
    /// auto: lines on a terminal, pipe otherwise.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Turn off TCP_NODELAY (on by default).
    #[arg(long)]
    pub nagle: bool,
    /// Datagram protocols: resend a datagram whose echo has not come within --timeout this
    /// many times before calling it lost.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Datagram protocols in pipe mode: cut the input into datagrams of at most this size.
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "1024")]
    pub size: usize,
}

/// How `connect` feeds the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Lines on a terminal, pipe otherwise.
    Auto,
    /// One line at a time, each echo awaited.
    Lines,
    /// Everything as it comes, binary-safe.
    Pipe,
}

fn parse_endpoint(text: &str) -> Result<Endpoint, String> {
    Endpoint::parse(text).map_err(|e| e.to_string())
}

fn parse_size(text: &str) -> Result<usize, String> {
    echotool_core::size::parse(text).map_err(|e| e.to_string())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    echotool_core::duration::parse(text).map_err(|e| e.to_string())
}

/// Parses the command line, listing the registry's protocols in the help of `--proto`.
pub fn parse(registry: &Registry) -> Result<Cli, clap::Error> {
    let names = registry.names().join(", ");
    let details: Vec<String> = registry
        .iter()
        .map(|t| format!("  {:<6} {}", t.name(), t.summary()))
        .collect();
    let long = format!(
        "Protocol for addresses given without a URL scheme:\n{}",
        details.join("\n")
    );
    let help = format!("Protocol: {names}");
    let command = Cli::command()
        .mut_subcommand("serve", |c| {
            c.mut_arg("proto", |a| a.help(help.clone()).long_help(long.clone()))
        })
        .mut_subcommand("connect", |c| {
            c.mut_arg("proto", |a| a.help(help.clone()).long_help(long.clone()))
        });
    let matches = command.try_get_matches()?;
    Cli::from_arg_matches(&matches)
}
