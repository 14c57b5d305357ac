//! `nanokube`: Kubernetes as one binary.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nanokube_apiserver::authz::MastersOnly;
use nanokube_apiserver::pki::Pki;
use nanokube_apiserver::server::{self, ApiServer};
use nanokube_store::{SqliteStore, Store};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "nanokube",
    version,
    about = "Kubernetes as one binary: API server, controllers and node agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (HTTPS) on this machine, keeping state in an embedded SQLite database.
    Server(ServerArgs),
    /// Print the admin kubeconfig of a data directory.
    Kubeconfig(DataDirArgs),
}

#[derive(Args)]
struct DataDirArgs {
    /// Where state, keys and the kubeconfig live [default: $XDG_DATA_HOME/nanokube or
    /// ~/.local/share/nanokube]
    #[arg(long, env = "NANOKUBE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// HTTPS port; 0 picks a free one (the kubeconfig names the port actually used).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address clients (and pods) reach the server at; defaults to the bind address, or
    /// 127.0.0.1 when binding to all addresses.
    #[arg(long)]
    advertise_address: Option<IpAddr>,
}

fn data_dir(arg: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = arg {
        return Ok(d.clone());
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("nanokube"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/nanokube"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("NANOKUBE_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(run_server(args))
        }
        Command::Kubeconfig(args) => {
            let dir = data_dir(&args.data_dir)?;
            let path = dir.join("kubeconfig");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (has `nanokube server --data-dir {}` run?)",
                    path.display(),
                    dir.display()
                )
            })?;
            print!("{text}");
            Ok(())
        }
    }
}

async fn run_server(args: ServerArgs) -> Result<()> {
    let started = Instant::now();
    let dir = data_dir(&args.data.data_dir)?;
    nanokube_apiserver::pki::ensure_private_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let advertise = args
        .advertise_address
        .unwrap_or(if args.bind_address.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            args.bind_address
        });
    let pki =
        Pki::load_or_create(&dir.join("pki"), Some(advertise)).context("preparing certificates")?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("state.db")).context("opening the state database")?);
    let _compaction =
        nanokube_store::spawn_auto_compaction(store.clone(), 10_000, Duration::from_secs(300));

    let listener =
        std::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.secure_port))
            .with_context(|| format!("listening on {}:{}", args.bind_address, args.secure_port))?;
    let port = listener
        .local_addr()
        .context("reading the listening address")?
        .port();
    let server_address = SocketAddr::new(advertise, port).to_string();
    let url = format!("https://{server_address}");

    let api = Arc::new(ApiServer::new(
        store.clone(),
        Arc::new(MastersOnly),
        server_address,
    ));
    let tls = server::tls_config(&pki)?;
    let handle = axum_server::Handle::new();
    let serving = tokio::spawn(server::serve_https(
        api.clone(),
        listener,
        tls,
        handle.clone(),
    ));

    nanokube_apiserver::bootstrap::run(&api)
        .await
        .context("creating the system namespaces")?;
    let kubeconfig_path = dir.join("kubeconfig");
    nanokube_apiserver::pki::write_private(&kubeconfig_path, pki.admin_kubeconfig(&url).as_bytes())
        .context("writing the kubeconfig")?;
    api.ready.store(true, Ordering::Relaxed);
    // Build the OpenAPI documents off the start-up path, before kubectl first asks for them.
    tokio::task::spawn_blocking(|| {
        let _ = nanokube_apiserver::openapi::v3_index();
        let _ = nanokube_apiserver::openapi::v2_document();
    });
    tracing::info!(url = %url, elapsed_ms = started.elapsed().as_millis() as u64, "nanokube is serving");
    println!("nanokube is serving the Kubernetes API at {url}");
    println!("To use kubectl with it:");
    println!("  export KUBECONFIG={}", kubeconfig_path.display());

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: shutting down"),
        r = serving => {
            r.context("the HTTPS server task failed")?.context("the HTTPS server stopped")?;
            return Ok(());
        }
    }
    api.ready.store(false, Ordering::Relaxed);
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    Ok(())
}
