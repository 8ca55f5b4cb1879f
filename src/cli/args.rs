//! The command line as clap reads it: the global options and every subcommand with its
//! arguments. Nothing here runs anything.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "reachlab",
    version,
    about = "Predict what ping, ssh and curl do on a network before you deploy it",
    after_help = "Exit codes: 0 ok, 1 a check or probe did not give the expected outcome, 2 invalid input."
)]
pub(crate) struct Cli {
    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub(crate) color: ColorWhen,
    /// Seed of the simulation's random numbers (frame loss); the same seed gives the same output.
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) seed: u64,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What a command prints, as the commands' code sees it; each subcommand's `--format` offers
/// only the formats it can print (clap refuses the others), see [`Cli::output`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    /// A topology file (`live show`).
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    Yaml,
    /// Comma-separated values, one row per cell (`matrix`).
    Csv,
    /// Markdown tables (`matrix`).
    Markdown,
}

/// `--format` and `--pcap` of the probe commands (ping, ssh, curl, tcp, udp, trace).
#[derive(clap::Args)]
pub(crate) struct ProbeOut {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextJson::Text)]
    pub(crate) format: TextJson,
    /// Write the simulated frames to FILE (pcapng, one interface per link; DIR/: a pcap per link).
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
}

/// `--format` of the commands that print text or JSON.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct TextOrJson {
    /// Output format.
    #[arg(long, value_enum, default_value_t = TextJson::Text)]
    pub(crate) format: TextJson,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TextJson {
    Text,
    Json,
}

/// The formats of `reachlab matrix` (and `matrix merge`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TableFormat {
    /// A coloured grid per probe, with the legend.
    Text,
    Json,
    /// Comma-separated values, one row per cell.
    Csv,
    /// Markdown tables.
    Markdown,
}

/// The formats of `reachlab live show`.
#[cfg(all(feature = "emulate", target_os = "linux"))]
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    Text,
    Json,
    /// A topology file.
    Yaml,
}

impl From<TextJson> for Format {
    fn from(f: TextJson) -> Self {
        match f {
            TextJson::Text => Format::Text,
            TextJson::Json => Format::Json,
        }
    }
}

impl From<TableFormat> for Format {
    fn from(f: TableFormat) -> Self {
        match f {
            TableFormat::Text => Format::Text,
            TableFormat::Json => Format::Json,
            TableFormat::Csv => Format::Csv,
            TableFormat::Markdown => Format::Markdown,
        }
    }
}

#[cfg(all(feature = "emulate", target_os = "linux"))]
impl From<ShowFormat> for Format {
    fn from(f: ShowFormat) -> Self {
        match f {
            ShowFormat::Text => Format::Text,
            ShowFormat::Json => Format::Json,
            ShowFormat::Yaml => Format::Yaml,
        }
    }
}

impl Cli {
    /// The output format the subcommand was given (text for those without `--format`).
    pub(crate) fn output(&self) -> Format {
        match &self.command {
            Command::Validate { out, .. }
            | Command::Show { out, .. }
            | Command::Check { out, .. }
            | Command::Diff { out, .. }
            | Command::Traceroute { out, .. }
            | Command::Fuzz { out, .. } => out.format.into(),
            Command::Ping { out, .. }
            | Command::Ssh { out, .. }
            | Command::Curl { out, .. }
            | Command::Tcp { out, .. }
            | Command::Udp { out, .. }
            | Command::Trace { out, .. } => out.format.into(),
            Command::Matrix(args) => args.format.into(),
            #[cfg(all(feature = "emulate", target_os = "linux"))]
            Command::Emulate { command } => command.output(),
            #[cfg(all(feature = "emulate", target_os = "linux"))]
            Command::Live { command } => command.output(),
            Command::Graph { .. }
            | Command::Schema
            | Command::Completions { .. }
            | Command::Generate { .. } => Format::Text,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check topology files (and every *.yaml/*.yml under directories); report all problems.
    Validate {
        #[command(flatten)]
        out: TextOrJson,
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Show a topology: segments, nodes, interfaces, listeners and each routing table as `ip route` prints it.
    Show {
        #[command(flatten)]
        out: TextOrJson,
        file: PathBuf,
        /// Show only this node.
        #[arg(long)]
        node: Option<String>,
        /// Print the node's netfilter as `iptables-save` prints it (what `iptables-restore`
        /// loads, and what `iptables_save:` reads back).
        #[arg(long, requires = "node")]
        iptables_save: bool,
        /// Print the node's netfilter as the nftables table the emulator loads (`nft -f`).
        #[cfg(all(feature = "emulate", target_os = "linux"))]
        #[arg(long, requires = "node", conflicts_with = "iptables_save")]
        nft: bool,
    },
    /// Run every `expect:` entry of the files and compare the predicted outcome with the expected
    /// one; check every invariant over the flows it covers.
    Check {
        #[command(flatten)]
        out: TextOrJson,
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Also check every invariant and expectation again with each set of K segments or
        /// nodes down (1: every single failure); exit 1 when one breaks something.
        #[arg(long, value_name = "K")]
        failures: Option<usize>,
    },
    /// Predict `ping` from node FROM to TO (an address, a node name or a DNS name).
    Ping {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        to: String,
        /// Number of echo requests.
        #[arg(short = 'c', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// Seconds to wait for a reply after the last request.
        #[arg(short = 'W')]
        wait: Option<u64>,
        /// Time to live of the echo requests, 1 to 255 (default: the sender's, 64 on Linux): a
        /// router that would forward a request with TTL 1 answers "Time to live exceeded".
        #[arg(short = 't', value_parser = clap::value_parser!(u8).range(1..))]
        ttl: Option<u8>,
    },
    /// Predict `ssh HOST` from node FROM.
    Ssh {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        host: String,
        #[arg(short = 'p', default_value_t = 22)]
        port: u16,
    },
    /// Predict `curl URL` from node FROM (http:// URLs).
    Curl {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        url: String,
    },
    /// Predict a TCP connection from FROM to TO:PORT.
    Tcp {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        to: String,
        port: u16,
    },
    /// Predict a UDP datagram from FROM to TO:PORT.
    Udp {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        to: String,
        port: u16,
    },
    /// Every hop of a probe: node, interfaces, route used, decision (ping unless --tcp/--udp).
    Trace {
        #[command(flatten)]
        out: ProbeOut,
        file: PathBuf,
        from: String,
        to: String,
        #[arg(long, conflicts_with = "udp")]
        tcp: Option<u16>,
        #[arg(long)]
        udp: Option<u16>,
    },
    /// Predict `traceroute TO` from node FROM: UDP probes with TTL 1, 2, … and who answers each,
    /// as traceroute 2.1 prints it.
    Traceroute {
        #[command(flatten)]
        out: TextOrJson,
        file: PathBuf,
        from: String,
        to: String,
        /// The most hops (TTLs) to probe, 1 to 255.
        #[arg(short = 'm', default_value_t = 30, value_parser = clap::value_parser!(u8).range(1..))]
        max_hops: u8,
        /// Probes a hop, 1 to 10.
        #[arg(short = 'q', default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
        queries: u8,
    },
    /// Build a topology in Linux network namespaces and probe it for real (needs root).
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    Emulate {
        #[command(subcommand)]
        command: super::emulate::EmulateCommand,
    },
    /// This machine as a topology, and real probes from it beside the prediction.
    #[cfg(all(feature = "emulate", target_os = "linux"))]
    Live {
        #[command(subcommand)]
        command: super::emulate::LiveCommand,
    },
    /// Every source node against every destination, one cell per probe: ✓ a reply, ✗ and the
    /// cause otherwise (--format text, csv, json or markdown).
    Matrix(MatrixArgs),
    /// The flows whose outcome differs between two versions of a topology, with the cause on
    /// each side; nodes only one version has. Exit 0 when nothing differs, 1 when something does.
    Diff {
        /// The old version: a file, or REV:PATH for PATH at git revision REV.
        old: String,
        /// The new version: a file, or REV:PATH.
        new: String,
        #[command(flatten)]
        cells: CellArgs,
        #[command(flatten)]
        out: TextOrJson,
    },
    /// Draw the topology (SVG, Graphviz dot or Mermaid), platform sections grouped, with probes
    /// traced on it: hops numbered, NAT rewrites noted, the drop point in red.
    Graph {
        file: PathBuf,
        /// Trace a probe from FROM to TO (an address, a node or a DNS name); repeatable.
        #[arg(long, num_args = 2, value_names = ["FROM", "TO"], action = clap::ArgAction::Append)]
        trace: Vec<String>,
        /// The probe of each --trace, in order: ping, ssh[:PORT], curl[:PORT], tcp:PORT,
        /// udp:PORT (default ping).
        #[arg(long, value_name = "PROBE", action = clap::ArgAction::Append)]
        probe: Vec<String>,
        /// Output format.
        #[arg(long = "as", value_enum, default_value_t = GraphAs::Svg)]
        graph_as: GraphAs,
        /// Write to FILE instead of standard output.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// What breaks if a line is forgotten: mutate the file one element at a time (drop a route,
    /// a NAT rule, a listener, an address; flip a filter rule; forwarding off) and report which
    /// invariants and expectations each mutation breaks, at the line of the original file.
    Fuzz {
        #[command(flatten)]
        out: TextOrJson,
        file: PathBuf,
        /// Run at most N mutations, chosen with --seed (default: all, in file order).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print the JSON Schema of the topology format.
    Schema,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a generated topology file (for benchmarks and experiments; sizes drawn from --seed).
    Generate {
        /// Write the topology as YAML or as JSON (which loads without a YAML tree: faster
        /// for very large files).
        #[arg(long, value_enum, default_value_t = TopologyFormat::Yaml, global = true)]
        format: TopologyFormat,
        #[command(subcommand)]
        what: GenerateWhat,
    },
}

/// The formats a topology is written in by `reachlab generate`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TopologyFormat {
    Yaml,
    Json,
}

/// What `reachlab generate` writes.
#[derive(Subcommand)]
pub(crate) enum GenerateWhat {
    /// N routers in a line between hosts `a` and `b` (N + 2 nodes).
    Chain { routers: usize },
    /// A k-ary fat-tree of routers: k^3/4 hosts, 5k^2/4 routers (K even, 2 to 64).
    FatTree { k: usize },
    /// Sites behind NAT routers on a backbone, with a core router and a server.
    Campus {
        #[arg(long, default_value_t = 20)]
        sites: usize,
        /// At most this many LANs per site.
        #[arg(long, default_value_t = 4)]
        lans: usize,
        /// At most this many hosts per LAN.
        #[arg(long, default_value_t = 20)]
        hosts: usize,
    },
    /// A Kubernetes cluster of NODES nodes running PODS pods behind ClusterIP Services.
    Cluster { nodes: usize, pods: usize },
    /// HOSTS hosts on SUBNETS subnets (1 to 256) behind one router.
    Hosts { hosts: usize, subnets: usize },
}

/// The formats of `reachlab graph --as`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphAs {
    Svg,
    Dot,
    Mermaid,
}

/// What `matrix` and `diff` probe.
#[derive(clap::Args)]
pub(crate) struct CellArgs {
    /// Probes, comma-separated: ping, ssh[:PORT], http[:PORT], tcp:PORT, udp:PORT. Default:
    /// ping for `matrix`; for `diff`, ping and the probes of the files' expectations, listeners
    /// and port forwards (also at the addresses port forwards match).
    #[arg(long, value_name = "PROBES")]
    pub(crate) probe: Option<reachlab::matrix::ProbeList>,
    /// Source nodes, comma-separated names or patterns (`h*`); default: every node.
    #[arg(long, value_name = "NODES")]
    pub(crate) from: Option<reachlab::matrix::Selection>,
    /// Destinations, comma-separated node names, patterns, addresses or DNS names; default: every
    /// node with an address, probed at its first address.
    #[arg(long, value_name = "NODES")]
    pub(crate) to: Option<reachlab::matrix::Selection>,
    /// Progress bar on stderr: auto shows it when a run lasts over a second on a terminal.
    #[arg(long, value_enum, default_value_t = ProgressWhen::Auto)]
    pub(crate) progress: ProgressWhen,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressWhen {
    Auto,
    Always,
    Never,
}

impl CellArgs {
    pub(crate) fn progress(&self) -> reachlab::matrix::ProgressMode {
        match self.progress {
            ProgressWhen::Auto => reachlab::matrix::ProgressMode::Auto,
            ProgressWhen::Always => reachlab::matrix::ProgressMode::Always,
            ProgressWhen::Never => reachlab::matrix::ProgressMode::Never,
        }
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct MatrixArgs {
    #[command(subcommand)]
    pub(crate) merge: Option<MatrixCommand>,
    /// The topology file.
    #[arg(required = true)]
    pub(crate) file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) cells: CellArgs,
    /// Output format (also of `matrix merge`).
    #[arg(long, global = true, value_enum, default_value_t = TableFormat::Text)]
    pub(crate) format: TableFormat,
    /// Compute only slice I of N (from 1) and print it as JSON, for `reachlab matrix merge`.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<reachlab::matrix::Shard>,
}

#[derive(Subcommand)]
pub(crate) enum MatrixCommand {
    /// Join the JSON slices of `matrix --shard I/N` into the whole matrix, in any --format.
    Merge {
        #[arg(required = true, value_name = "SLICE.json")]
        slices: Vec<PathBuf>,
    },
}
