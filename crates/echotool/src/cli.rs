//! Every flag, defined and documented once: `--help` is the manual.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use echotool_bench::{BenchOptions, Scenario};
use echotool_config::LogFormat;
use echotool_core::{
    Endpoint, HostPort, Limits, Registry, Setting, SocketFileOptions, SocketOptions, TlsVersion,
    WebSocketOptions,
};

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
    /// Log format: text for people, json (one object per line) for machines. [default: text]
    #[arg(long, global = true, value_parser = log_format())]
    pub log_format: Option<LogFormat>,
}

/// `--log-format`: the config file's formats, by the same names.
fn log_format() -> impl clap::builder::TypedValueParser<Value = LogFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(LogFormat::NAMES)
        .map(|name| name.parse().unwrap_or_default())
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Listen and echo every byte back to every client until Ctrl-C.
    ///
    /// Prints `listening on PROTO://ADDR` to stderr once it accepts connections (with the real
    /// port when you ask for port 0), and a summary per listener when it stops.
    Serve(ServeArgs),
    /// Compare protocols: the same echo over every transport, measured side by side.
    ///
    /// With no flags: embedded servers for every protocol on loopback (the same code as
    /// serve), a warm-up and a measurement per protocol and scenario (latency, throughput,
    /// and setup: connect, handshake, one echo, close; the shapes are in the flags' defaults
    /// below), then one table. Servers and client run on separate runtimes pinned to separate
    /// halves of the CPUs. Every echoed byte is verified: an altered echo makes the exit status
    /// 1; lost, late and duplicated datagrams, a --rate not reached and thin samples are
    /// reported as such. Ctrl-C ends the run early and still reports what finished.
    Bench(BenchArgs),
    /// Show a bench report again, or merge the reports of several load generators into one.
    ///
    /// Given one JSON file (from `bench --json FILE`), prints its table again, or writes its
    /// JSON, CSV or plot. Given several, merges rows of the same protocol, scenario, size,
    /// link and target: latency histograms are added (so every percentile is exact, never an
    /// average of percentiles), counts are summed, and the rate is the total over the union of
    /// the agents' windows, with the share in which they measured together (overlap). Reports
    /// of another schema, or rows of different shapes, are refused.
    Report(ReportArgs),
    /// Write a CA, a server and a client certificate (PEM) for testing TLS.
    ///
    /// The server certificate is valid for localhost, 127.0.0.1 and ::1 plus every --san.
    /// Private keys are written with mode 0600. Existing files are kept unless --force.
    #[cfg(feature = "secure")]
    Certs(CertsArgs),
    /// Work with config files: `echotool config check FILE` validates one without binding.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Connect to an echo server: send what you type (or pipe in), show what comes back.
    ///
    /// On a terminal it is a seesaw: each line is sent and its echo printed before the next.
    /// In a pipe it streams: `printf 'a\nb\n' | echotool connect` prints exactly `a\nb\n`,
    /// binary-safe, and exits once the echo of everything sent has arrived. Every echo is
    /// compared with what was sent, byte for byte: a reply that is not an echo ends the
    /// session with exit status 1 and says what came back.
    Connect(ConnectArgs),
    /// Print a shell completion script, e.g. `echotool completions bash >
    /// /etc/bash_completion.d/echotool`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `echotool manpage | man -l -`.
    Manpage,
    /// Print the version of echotool and of the libraries it measures with (rustls, quinn,
    /// tokio), the crypto provider, the target and the transports built in.
    Version,
}

/// `echotool serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: HOST:PORT, [V6]:PORT, :PORT, or a URL such as udp://[::1]:5555; for
    /// unix and unixgram a socket path (unix:///run/echo.sock) or abstract name (unix://@echo).
    /// Repeat for several listeners in one process. Default: loopback, port 5555; for unix,
    /// $XDG_RUNTIME_DIR/echotool.sock (or the listeners of --config).
    #[arg(short, long = "listen", value_name = "ADDR|URL", value_parser = parse_endpoint)]
    pub listen: Vec<Endpoint>,
    /// Protocol for addresses given without a URL scheme.
    #[arg(short, long, value_name = "PROTO", default_value = "tcp")]
    pub proto: String,
    /// Listeners and settings from a TOML file (see config/README.md); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics, and a health check at /healthz (200 once
    /// every listener is bound, 503 before and while draining): HOST:PORT such as 0.0.0.0:9555
    /// in a container, port 0 for any free port (printed). Overrides [metrics] in --config.
    /// [default: off]
    #[arg(long, value_name = "ADDR", value_parser = parse_metrics)]
    pub metrics: Option<HostPort>,
    /// Most connections open at once, per listener.
    #[arg(long, value_name = "N", value_parser = whole::<usize>(Setting::MaxConns))]
    pub max_conns: Option<usize>,
    /// What to do with connections beyond --max-conns: wait in the backlog, or refuse at once.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub on_limit: Option<OnLimitArg>,
    /// Close a connection that sends nothing (or reads nothing back) for this long; 0 = never.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// On Ctrl-C or SIGTERM, how long in-flight echoes may take before connections are cut.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// Length of the listen backlog.
    #[arg(long, value_name = "N", value_parser = whole::<u32>(Setting::Backlog))]
    pub backlog: Option<u32>,
    /// Turn off TCP_NODELAY (on by default), letting the kernel coalesce small writes.
    #[arg(long)]
    pub nagle: bool,
    /// Socket receive buffer (SO_RCVBUF), e.g. 4M. [default: the kernel's]
    #[arg(long, value_name = "BYTES", value_parser = size_of(Setting::RecvBuffer))]
    pub recv_buffer: Option<usize>,
    /// Socket send buffer (SO_SNDBUF), e.g. 4M. [default: the kernel's]
    #[arg(long, value_name = "BYTES", value_parser = size_of(Setting::SendBuffer))]
    pub send_buffer: Option<usize>,
    /// UDP: sockets sharing the port (SO_REUSEPORT). [default: one per CPU]
    #[arg(long, value_name = "N", value_parser = whole::<u32>(Setting::Workers))]
    pub workers: Option<u32>,
    /// UDP: echo at most this many datagrams per second per source address; the rest are
    /// dropped and counted. [default: no limit]
    #[arg(long, value_name = "PACKETS_PER_SEC", value_parser = whole::<u32>(Setting::UdpRateLimit))]
    pub udp_rate_limit: Option<u32>,
    /// Unix sockets: the socket file's mode, in octal, which decides who may connect (write
    /// permission is needed): 0600 the server's user only, 0660 its group too, 0666 everyone.
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    pub mode: Option<u32>,
    /// WebSocket: the largest message (after reassembly) a ws or wss server takes, e.g. 4M; a
    /// larger one is refused with close code 1009. A message is held whole before its echo,
    /// so this bounds each connection's memory; Python's websockets has the same default.
    #[arg(long, value_name = "BYTES", value_parser = size_of(Setting::WsMaxMessage))]
    pub ws_max_message: Option<usize>,
    /// TLS, QUIC and WebSocket: drop a connection whose handshake (for ws and wss, the HTTP
    /// upgrade too) has not finished in this long.
    #[arg(long, value_name = "DURATION", value_parser = duration_of(Setting::HandshakeTimeout))]
    pub handshake_timeout: Option<Duration>,
    /// TLS settings of the server.
    #[command(flatten)]
    pub tls: ServeTlsArgs,
}

/// The connection-limit policy, as typed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnLimitArg {
    /// New connections wait in the kernel's backlog until one closes.
    Wait,
    /// New connections are accepted and closed at once.
    Refuse,
}

/// TLS flags of `serve`.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct ServeTlsArgs {
    /// Certificate chain (PEM), leaf first. Without --cert and --key the server makes an
    /// ephemeral self-signed certificate and prints its fingerprint.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Require client certificates issued by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Offer only this TLS version (1.2 or 1.3); both by default.
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    pub tls_version: Option<TlsVersion>,
    /// ALPN protocol to accept; repeat or separate with commas for several, in preference order.
    #[arg(long, value_name = "PROTOCOL", value_delimiter = ',', value_parser = parse_alpn)]
    pub alpn: Vec<String>,
}

/// TLS flags of `connect`.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
pub struct ConnectTlsArgs {
    /// Trust this CA (PEM) instead of the system's roots, e.g. certs/ca.pem.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Verify the certificate against this name instead of the host dialed.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Do not verify the server's certificate at all (a warning says so every time).
    #[arg(long, conflicts_with_all = ["ca", "pin"])]
    pub insecure: bool,
    /// Accept only a server certificate with this SHA-256 fingerprint (sha256:HEX, as the
    /// server prints it; colons allowed); no CA needed.
    #[arg(long, value_name = "sha256:HEX")]
    pub pin: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Offer only this TLS version (1.2 or 1.3).
    #[arg(long, value_name = "VERSION", value_parser = parse_tls_version)]
    pub tls_version: Option<TlsVersion>,
    /// ALPN protocols to offer, in preference order (repeat or separate with commas).
    #[arg(long, value_name = "PROTOCOL", value_delimiter = ',')]
    pub alpn: Vec<String>,
}

/// `echotool bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Protocols to compare, comma separated.
    #[arg(
        short,
        long,
        value_name = "PROTO,...",
        value_delimiter = ',',
        conflicts_with = "target"
    )]
    pub proto: Vec<String>,
    /// Scenarios, comma separated: latency, throughput, setup, and multistream (several
    /// independent streams on one connection, --depth of them: QUIC streams, or messages in
    /// flight on one TCP or TLS stream; with --link loss=... it shows head-of-line blocking).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', value_parser = parse_scenario)]
    pub scenario: Vec<Scenario>,
    /// Only these set-up variants, comma separated: full, resumed (tls); 1-rtt, 0-rtt,
    /// 1-rtt-shared, 0-rtt-shared (quic; -shared dials through one client endpoint);
    /// tcp+upgrade (ws); tls+upgrade, resumed+upgrade (wss). Default: every variant.
    /// Protocols without variants (tcp, unix) are measured as usual.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub variant: Vec<String>,
    /// Connections (sockets for datagram protocols) per measurement.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub conns: Option<u32>,
    /// Message size, or a comma-separated list to sweep (64,1K,16K).
    #[arg(short, long, value_name = "BYTES,...", value_delimiter = ',', value_parser = parse_size)]
    pub size: Vec<usize>,
    /// Messages in flight per connection (closed loop).
    #[arg(short, long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub depth: Option<u32>,
    /// Measured time per run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Repetitions of every measurement; the table shows the median and the spread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Open loop: send this many messages per second in total, on schedule, and count latency
    /// from the scheduled time, so a stalled server shows in the tail (no coordinated omission).
    #[arg(long, value_name = "MSGS_PER_SEC", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Only the set-up scenario: connect (and handshake), one echo, close, as fast as possible.
    #[arg(long, conflicts_with = "scenario")]
    pub connect_rate: bool,
    /// Measure external echo servers (RFC 862: socat, ncat, inetd, another echotool) instead
    /// of embedded ones, side by side in one table: comma separated or repeated, e.g.
    /// tcp://h:5555,udp://h:5555,tls://h:5556,quic://h:5557. The TLS flags apply to TLS and
    /// QUIC targets alike.
    #[arg(long, value_name = "URL,...", value_parser = parse_endpoint, value_delimiter = ',', action = clap::ArgAction::Append)]
    pub target: Vec<Endpoint>,
    /// Wait until this wall-clock time to start the first warm-up, and start every later one
    /// on a schedule from it (every warm-up + duration + 3 s), so that agents on several hosts
    /// measure the same intervals: RFC 3339 (2026-11-30T01:40:00Z) or Unix seconds (date +%s).
    /// Merge their --json files with `echotool report`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start_at: Option<std::time::SystemTime>,
    /// Where the report goes.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How long an echo may take from when its message left: a datagram not echoed by then
    /// counts as lost (and as late if its echo comes after all), a stream connection as
    /// failed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Do not pin the embedded servers and the client to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Put an emulated link between the client and the embedded servers (Linux, root or user
    /// namespaces): a profile (none, lan, wifi, 4g, intercontinental, satellite) and/or
    /// comma-separated keys per direction: delay (one way), jitter, loss, rate, queue,
    /// reorder, dup, mtu, with up:/down: for one direction, e.g. delay=20ms,loss=1% or
    /// 4g,loss=2%. Repeat it, or list profiles (lan,4g,satellite), to sweep several links.
    #[arg(long, value_name = "SPEC", value_parser = parse_links, action = clap::ArgAction::Append)]
    pub link: Vec<Vec<echotool_link::LinkSpec>>,
    /// With --link: write every packet that crossed the link (both ways, drops marked) to
    /// this pcapng file, for Wireshark or tcpdump (SSLKEYLOGFILE decrypts TLS and QUIC there).
    #[arg(long, value_name = "FILE.pcapng")]
    pub pcap: Option<PathBuf>,
    /// With --link: print each row's first connection as a timeline on stderr: time,
    /// direction, and one line per packet (TCP flags, TLS records, QUIC packet types).
    #[arg(long)]
    pub trace: bool,
    /// TLS settings for a --target (embedded TLS servers are trusted by their fingerprint).
    #[command(flatten)]
    pub tls: ConnectTlsArgs,
}

/// Where a report goes besides the table: `bench` and `report` alike.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Also write the report as one JSON document to FILE: every figure with its latency
    /// histogram (HdrHistogram V2, base64), counts and wall-clock interval, the parameters,
    /// the version, machine and clock (docs/report-schema.md); without FILE (or with -), print
    /// it instead of the table. Checked before anything is measured.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Also write one CSV line per row to FILE; without FILE (or with -), print it instead of
    /// the table.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub csv: Option<PathBuf>,
    /// Draw latency percentile curves, one per protocol, to this SVG file (SVG only).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// `echotool report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Reports written by `echotool bench --json FILE`: one is shown again, several (one per
    /// load generator) are merged.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Where the report goes.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `echotool config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file without binding anything: everything `serve --config FILE` would
    /// refuse (syntax, keys, values and their ranges, protocols, addresses, certificate files,
    /// keys that do nothing for their listener, listeners that cannot bind side by side).
    Check {
        /// The file, e.g. config/echotool.toml.
        file: PathBuf,
    },
}

/// `echotool certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory to write into.
    #[arg(short, long, value_name = "DIR", default_value = "certs")]
    pub out: PathBuf,
    /// Another name (DNS name or IP address) for the server certificate; repeatable.
    #[arg(long, value_name = "NAME|IP")]
    pub san: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// How long the server and client certificates are valid, in days (the CA: ten years).
    #[arg(long, value_name = "N", default_value_t = 825, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

/// `echotool connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server: HOST:PORT, [V6]:PORT, :PORT, or a URL such as tcp://127.0.0.1:5555; for
    /// unix and unixgram a socket path (unix:///run/echo.sock, or /run/echo.sock with
    /// --proto unix) or abstract name (unix://@echo). Default: 127.0.0.1:5555 (::1 for tcp6;
    /// $XDG_RUNTIME_DIR/echotool.sock for unix).
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
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// lines: send a line, wait for its echo, repeat. pipe: stream everything, then half-close.
    /// auto: lines on a terminal, pipe otherwise.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Turn off TCP_NODELAY (on by default).
    #[arg(long)]
    pub nagle: bool,
    /// TLS settings of the client.
    #[command(flatten)]
    pub tls: ConnectTlsArgs,
    /// QUIC: send each message as an unreliable datagram (RFC 9221) instead of on a stream;
    /// lost and reordered datagrams are reported as for UDP.
    #[arg(long)]
    pub datagram: bool,
    /// Datagram protocols: resend a datagram whose echo has not come within --timeout this
    /// many times before calling it lost.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Datagram protocols in pipe mode: cut the input into datagrams of at most this size.
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub size: Option<usize>,
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

fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    echotool_bench::clock::parse_time(text).map_err(|e| e.to_string())
}

fn parse_metrics(text: &str) -> Result<HostPort, String> {
    echotool_config::parse_metrics_address(text)
}

fn parse_links(text: &str) -> Result<Vec<echotool_link::LinkSpec>, String> {
    echotool_link::LinkSpec::parse_list(text).map_err(|e| e.to_string())
}

fn parse_scenario(text: &str) -> Result<Scenario, String> {
    text.parse()
        .map_err(|e: echotool_bench::BenchError| e.to_string())
}

fn parse_tls_version(text: &str) -> Result<TlsVersion, String> {
    text.parse()
        .map_err(|e: echotool_core::Error| e.to_string())
}

fn parse_size(text: &str) -> Result<usize, String> {
    echotool_core::size::parse(text).map_err(|e| e.to_string())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    echotool_bench::parse_rate(text).map_err(|e| e.to_string())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    echotool_core::duration::parse(text).map_err(|e| e.to_string())
}

/// A `serve` flag's value must be one its config file key accepts too: both ask the
/// [`Setting`].
fn within(setting: Setting, value: u64) -> Result<(), String> {
    match setting.accepts(value) {
        true => Ok(()),
        false => Err(format!("expected {}", setting.expecting())),
    }
}

/// A whole number within the range of `setting`.
fn whole<T: TryFrom<u64>>(setting: Setting) -> impl Fn(&str) -> Result<T, String> + Clone {
    move |text| {
        let expected = || format!("expected {}", setting.expecting());
        let n: u64 = text.trim().parse().map_err(|_| expected())?;
        within(setting, n)?;
        T::try_from(n).map_err(|_| expected())
    }
}

/// A byte size within the range of `setting`.
fn size_of(setting: Setting) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |text| {
        let n = parse_size(text)?;
        within(setting, u64::try_from(n).unwrap_or(u64::MAX))?;
        Ok(n)
    }
}

/// A duration within the range of `setting`, in milliseconds.
fn duration_of(setting: Setting) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let d = parse_duration(text)?;
        within(setting, u64::try_from(d.as_millis()).unwrap_or(u64::MAX))?;
        Ok(d)
    }
}

/// A socket file's mode in octal, within what `mode` in a config file accepts.
fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = echotool_core::mode::parse(text).map_err(|e| e.to_string())?;
    within(Setting::Mode, u64::from(mode))?;
    Ok(mode)
}

/// One ALPN protocol name of `serve`, as long as `alpn` in a config file may have.
fn parse_alpn(text: &str) -> Result<String, String> {
    within(Setting::Alpn, text.len() as u64)?;
    Ok(text.to_string())
}

/// The command line with everything only known at run time: the registry's protocols in
/// the help of `--proto`, and defaults taken from the constants the code uses, so that
/// `--help` cannot drift from what runs.
pub fn command(registry: &Registry) -> clap::Command {
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
    let proto = |a: Arg| a.help(help.clone()).long_help(long.clone());
    Cli::command()
        .mut_subcommand("serve", |c| serve_defaults(c.mut_arg("proto", proto)))
        .mut_subcommand("connect", |c| connect_defaults(c.mut_arg("proto", proto)))
        .mut_subcommand("bench", |c| bench_defaults(c, registry))
}

/// Appends `[default: VALUE]` to an argument's help, for options whose default is applied
/// after the config file (so clap itself must not fill it in).
fn shows_default(arg: Arg, value: impl std::fmt::Display) -> Arg {
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    arg.help(format!("{help} [default: {value}]"))
}

/// A default clap fills in, written from the code's own constant.
fn fills_default(arg: Arg, value: String) -> Arg {
    arg.default_value(value).required(false)
}

fn serve_defaults(c: clap::Command) -> clap::Command {
    let limits = Limits::default();
    let socket = SocketOptions::default();
    let secs = |d: Option<Duration>| d.map_or("0 (never)".to_string(), display);
    c.mut_arg("max_conns", |a| shows_default(a, limits.max_conns))
        .mut_arg("on_limit", |a| {
            shows_default(a, format!("{:?}", limits.on_limit).to_lowercase())
        })
        .mut_arg("idle_timeout", |a| {
            shows_default(a, secs(limits.idle_timeout))
        })
        .mut_arg("drain_timeout", |a| {
            shows_default(a, display(limits.drain_timeout))
        })
        .mut_arg("handshake_timeout", |a| {
            shows_default(a, display(limits.handshake_timeout))
        })
        .mut_arg("backlog", |a| shows_default(a, socket.backlog))
        .mut_arg("ws_max_message", |a| {
            shows_default(
                a,
                format!("{}M", WebSocketOptions::DEFAULT_MAX_MESSAGE >> 20),
            )
        })
        .mut_arg("mode", |a| {
            shows_default(
                a,
                echotool_core::mode::display(SocketFileOptions::DEFAULT_MODE),
            )
        })
}

fn connect_defaults(c: clap::Command) -> clap::Command {
    use echotool_core::client::{DATAGRAM_ECHO_TIMEOUT, STREAM_ECHO_TIMEOUT, SessionOptions};
    let session = SessionOptions::new("", echotool_core::client::Feed::Lines);
    c.mut_arg("timeout", |a| {
        shows_default(
            a,
            format!(
                "{}, {} for datagram protocols",
                display(STREAM_ECHO_TIMEOUT),
                display(DATAGRAM_ECHO_TIMEOUT)
            ),
        )
    })
    .mut_arg("size", |a| shows_default(a, session.datagram_size))
    .mut_arg("retries", |a| shows_default(a, session.retries))
}

fn bench_defaults(c: clap::Command, registry: &Registry) -> clap::Command {
    use echotool_core::client::{DATAGRAM_ECHO_TIMEOUT, STREAM_ECHO_TIMEOUT};
    let defaults = BenchOptions::default();
    let per_scenario = |pick: fn((usize, usize, usize)) -> String| {
        let each: Vec<String> = Scenario::EVERY
            .iter()
            .map(|s| format!("{s} {}", pick(s.defaults())))
            .collect();
        format!("per scenario: {}", each.join(", "))
    };
    let scenarios: Vec<&str> = defaults.scenarios.iter().map(|s| s.name()).collect();
    c.mut_arg("proto", |a| shows_default(a, registry.compared().join(",")))
        .mut_arg("scenario", |a| shows_default(a, scenarios.join(",")))
        .mut_arg("conns", |a| {
            shows_default(a, per_scenario(|d| d.0.to_string()))
        })
        .mut_arg("size", |a| {
            shows_default(a, per_scenario(|d| echotool_core::size::display(d.1)))
        })
        .mut_arg("depth", |a| {
            shows_default(a, per_scenario(|d| d.2.to_string()))
        })
        .mut_arg("duration", |a| fills_default(a, display(defaults.duration)))
        .mut_arg("warmup", |a| fills_default(a, display(defaults.warmup)))
        .mut_arg("runs", |a| fills_default(a, defaults.runs.to_string()))
        .mut_arg("timeout", |a| {
            shows_default(
                a,
                format!(
                    "{} for datagrams, {} for streams",
                    display(DATAGRAM_ECHO_TIMEOUT),
                    display(STREAM_ECHO_TIMEOUT)
                ),
            )
        })
}

/// A duration as it is typed on the command line: `5s`, `250ms`.
fn display(d: Duration) -> String {
    echotool_core::duration::display(d).replace(' ', "")
}

/// Parses the command line.
pub fn parse(registry: &Registry) -> Result<Cli, clap::Error> {
    let matches = command(registry).try_get_matches()?;
    Cli::from_arg_matches(&matches)
}
