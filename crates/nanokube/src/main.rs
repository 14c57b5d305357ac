//! `nanokube`: Kubernetes as one binary.

mod agent;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nanokube_apiserver::pki::Pki;
use nanokube_apiserver::rbac::{RbacAuthorizer, RbacCache};
use nanokube_apiserver::server::{self, ApiServer};
use nanokube_apiserver::serviceaccount::{StaticTokens, TokenIssuer};
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
    /// Run only the node agent, joining this machine to a nanokube (or Kubernetes) API server
    /// elsewhere.
    Agent(agent::AgentArgs),
    /// Print the admin kubeconfig of a data directory.
    Kubeconfig(DataDirArgs),
    /// Manage the local image store that pods' containers run from.
    Image(ImageArgs),
    /// The node agent's container runtime: sets up a container's namespaces and root, then
    /// runs its command (spec in $NANOKUBE_CONTAINER_SPEC). Not for direct use.
    #[command(hide = true)]
    ContainerInit,
    /// Runs a command inside a running container (`kubectl exec`). Not for direct use.
    #[command(hide = true)]
    ContainerEnter,
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
    /// How often old revisions are compacted away, as kube-apiserver's flag of the same name:
    /// each run drops history older than the revision seen at the previous run, so a watch or
    /// continue token older than two intervals gets `410 Expired`. `0s` disables compaction.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: Duration,
    /// A static token file (kube-apiserver format: `token,user,uid,"group1,group2"`); its
    /// tokens authenticate as the given users.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// The `iss` of the service-account tokens this server issues and accepts.
    #[arg(long, default_value = "https://kubernetes.default.svc.cluster.local")]
    service_account_issuer: String,
    /// Audiences the API accepts in service-account tokens (comma-separated) [default: the
    /// issuer].
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// Give every ServiceAccount a long-lived token Secret, as clusters did before 1.24.
    #[arg(long)]
    legacy_service_account_token_secrets: bool,
    /// The name this machine registers as [default: the host name].
    #[arg(long)]
    node_name: Option<String>,
}

/// Parses a Go-style duration: `300ms`, `90s`, `5m`, `1h30m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (examples: 500ms, 30s, 5m, 1h30m)");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A kube client that reaches this API server in-process as `controller`'s service account.
fn controller_client(api: &Arc<ApiServer>, controller: &str) -> kube::Client {
    let identity = nanokube_apiserver::loopback::controller_identity(controller);
    kube::Client::new(
        nanokube_apiserver::loopback::service(api.clone(), identity),
        "default",
    )
}

/// Starts the controllers, each with its own client and identity.
/// `kubectl logs` reads what the local node agent wrote.
struct AgentLogs {
    pods_dir: PathBuf,
}

impl nanokube_apiserver::pods::PodLogs for AgentLogs {
    fn logs(
        &self,
        req: nanokube_apiserver::pods::LogRequest,
        is_running: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>, String> {
        let opts = nanokube_kubelet::logs::LogOptions {
            follow: req.follow,
            previous: false,
            tail_lines: req.tail_lines,
            since_time: req.since_time,
            timestamps: req.timestamps,
            limit_bytes: req.limit_bytes,
        };
        nanokube_kubelet::logs::read(
            &self.pods_dir,
            &req.pod_uid,
            &req.container,
            req.restart_count,
            opts,
            is_running,
        )
        .map_err(|e| e.to_string())
    }
}

/// `kubectl exec` runs through the local node agent: for now the command runs on the host,
/// in `/`, while the container is running. Attach is not there yet.
struct AgentStreams {
    pods_dir: PathBuf,
}

impl AgentStreams {
    fn start(
        &self,
        req: nanokube_apiserver::streams::StreamRequest,
    ) -> Result<nanokube_apiserver::streams::StreamSession, String> {
        use nanokube_kubelet::exec::StdioOptions;
        let s = if req.command.is_empty() {
            nanokube_kubelet::attach::attach(&req.pod_uid, &req.container, req.stdin)?
        } else {
            let options = StdioOptions {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                tty: req.tty,
            };
            nanokube_kubelet::attach::exec(
                &self.pods_dir,
                std::path::Path::new("/proc/self/exe"),
                &req.pod_uid,
                &req.container,
                req.command,
                options,
            )?
        };
        Ok(nanokube_apiserver::streams::StreamSession {
            stdin: s.stdin,
            output: s.output,
            resize: s.resize,
            exit: s.exit,
        })
    }
}

impl nanokube_apiserver::streams::PodStreams for AgentStreams {
    fn open(
        &self,
        req: nanokube_apiserver::streams::StreamRequest,
    ) -> futures::future::BoxFuture<
        'static,
        Result<nanokube_apiserver::streams::StreamSession, String>,
    > {
        Box::pin(std::future::ready(self.start(req)))
    }
}

/// Starts the node agent for this machine and the scheduler, each as its own identity.
fn start_node_agent(
    api: &Arc<ApiServer>,
    node_name: &str,
    pods_dir: &std::path::Path,
    host_ip: &str,
    port: u16,
) {
    use nanokube_apiserver::authn::UserInfo;
    use nanokube_apiserver::loopback::service;
    let node_identity = UserInfo::authenticated(
        format!("system:node:{node_name}"),
        vec!["system:nodes".to_string()],
    );
    let node_client = kube::Client::new(service(api.clone(), node_identity), "default");
    let scheduler_identity = UserInfo::authenticated("system:kube-scheduler", Vec::<String>::new());
    let scheduler_client = kube::Client::new(service(api.clone(), scheduler_identity), "default");
    tokio::spawn(nanokube_kubelet::node::run(
        node_client.clone(),
        nanokube_kubelet::node::NodeConfig {
            node_name: node_name.to_string(),
            internal_ip: host_ip.to_string(),
            pods_dir: pods_dir.to_path_buf(),
            control_plane: true,
        },
    ));
    tokio::spawn(nanokube_kubelet::scheduler::run(scheduler_client));
    tokio::spawn(nanokube_kubelet::pod_worker::run(
        node_client,
        nanokube_kubelet::pod_worker::PodRuntimeConfig {
            node_name: node_name.to_string(),
            pods_dir: pods_dir.to_path_buf(),
            api_host: host_ip.to_string(),
            api_port: port,
            host_ip: host_ip.to_string(),
            // Works even when the binary was replaced on disk after the server started.
            runtime_binary: Some(PathBuf::from("/proc/self/exe")),
            images: Some(nanokube_kubelet::image::ImageStore::in_data_dir(
                pods_dir.parent().unwrap_or(pods_dir),
            )),
        },
    ));
}

fn start_controllers(
    api: &Arc<ApiServer>,
    pki: &Pki,
    issuer: Arc<TokenIssuer>,
    legacy_secrets: bool,
) {
    tokio::spawn(nanokube_controllers::garbage_collector::run(
        controller_client(api, "generic-garbage-collector"),
    ));
    tokio::spawn(nanokube_controllers::namespace::run(controller_client(
        api,
        "namespace-controller",
    )));
    tokio::spawn(nanokube_controllers::job::run(
        controller_client(api, "job-controller"),
        Arc::new(nanokube_controllers::job::SystemClock),
    ));
    tokio::spawn(nanokube_controllers::cronjob::run(
        controller_client(api, "cronjob-controller"),
        Arc::new(nanokube_controllers::job::SystemClock),
    ));
    tokio::spawn(nanokube_controllers::ttl_after_finished::run(
        controller_client(api, "ttl-after-finished-controller"),
        Arc::new(nanokube_controllers::job::SystemClock),
    ));
    tokio::spawn(nanokube_controllers::replicaset::run(
        controller_client(api, "replicaset-controller"),
        Arc::new(nanokube_controllers::job::SystemClock),
    ));
    tokio::spawn(nanokube_controllers::deployment::run(
        controller_client(api, "deployment-controller"),
        Arc::new(nanokube_controllers::job::SystemClock),
    ));

    tokio::spawn(nanokube_controllers::clusterrole_aggregation::run(
        controller_client(api, "clusterrole-aggregation-controller"),
    ));

    let signer: nanokube_controllers::token::Signer =
        Arc::new(move |ns: &str, sa: &str, uid: &str, secret: &str| {
            issuer
                .issue_legacy(ns, sa, uid, secret)
                .map_err(|e| e.to_string())
        });
    tokio::spawn(nanokube_controllers::token::run(
        controller_client(api, "token-controller"),
        nanokube_controllers::token::Config {
            ca_pem: pki.ca_cert_pem.clone(),
            signer,
            create_for_every_account: legacy_secrets,
        },
    ));
    tokio::spawn(nanokube_controllers::serviceaccount::run(
        controller_client(api, "service-account-controller"),
    ));
    tokio::spawn(nanokube_controllers::root_ca::run(
        controller_client(api, "root-ca-cert-publisher"),
        pki.ca_cert_pem.clone(),
    ));
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

/// Logs to stderr, filtered by `NANOKUBE_LOG` (default `info`).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NANOKUBE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::ContainerInit => std::process::exit(nanokube_kubelet::container_init::init_main()),
        Command::ContainerEnter => {
            std::process::exit(nanokube_kubelet::container_init::enter_main())
        }
        Command::Server(args) => {
            init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(run_server(args))
        }
        Command::Agent(args) => {
            init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(agent::run(args))
        }
        Command::Image(args) => run_image(args),
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
        nanokube_store::spawn_auto_compaction(store.clone(), args.etcd_compaction_interval);

    let listener =
        std::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.secure_port))
            .with_context(|| format!("listening on {}:{}", args.bind_address, args.secure_port))?;
    let port = listener
        .local_addr()
        .context("reading the listening address")?
        .port();
    let server_address = SocketAddr::new(advertise, port).to_string();
    let url = format!("https://{server_address}");

    let rbac = RbacCache::start(store.clone())
        .await
        .context("loading the RBAC policy")?;
    let mut api = ApiServer::with_rbac(
        store.clone(),
        Arc::new(RbacAuthorizer::new(rbac)),
        server_address,
    );
    let audiences = if args.api_audiences.is_empty() {
        vec![args.service_account_issuer.clone()]
    } else {
        args.api_audiences.clone()
    };
    let issuer = Arc::new(
        TokenIssuer::new(
            &pki.sa_key_pem,
            &pki.sa_pub_pem,
            args.service_account_issuer.clone(),
            audiences,
        )
        .context("loading the service-account signing key")?,
    );
    api.tokens.service_accounts = Some(issuer.clone());
    if let Some(path) = &args.token_auth_file {
        api.tokens.static_tokens =
            Some(StaticTokens::load(path).with_context(|| format!("reading {}", path.display()))?);
    }
    api.pod_logs = Some(Arc::new(AgentLogs {
        pods_dir: dir.join("pods"),
    }));
    api.pod_streams = Some(Arc::new(AgentStreams {
        pods_dir: dir.join("pods"),
    }));
    let api = Arc::new(api);

    let tls = server::tls_config(&pki)?;
    let handle = axum_server::Handle::new();
    let serving = tokio::spawn(server::serve_https(
        api.clone(),
        listener,
        tls,
        handle.clone(),
    ));

    let endpoint = nanokube_apiserver::bootstrap::Endpoint {
        ip: advertise.to_string(),
        port,
    };
    nanokube_apiserver::bootstrap::run(&api, &endpoint)
        .await
        .context("creating the system objects")?;
    start_controllers(
        &api,
        &pki,
        issuer,
        args.legacy_service_account_token_secrets,
    );
    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(nanokube_kubelet::node::default_node_name);
    start_node_agent(
        &api,
        &node_name,
        &dir.join("pods"),
        &advertise.to_string(),
        port,
    );
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

#[derive(Args)]
struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Load the images of an archive into the local image store: `docker save` output or an
    /// OCI image layout, as a tar file (gzipped or not). Safe while the server runs; pods
    /// created afterwards find the images.
    Import(ImageImportArgs),
    /// List the images in the local image store.
    #[command(visible_alias = "list")]
    Ls(DataDirArgs),
}

#[derive(Args)]
struct ImageImportArgs {
    /// The archive to load.
    file: PathBuf,
    /// The reference to tag the image with (`busybox`, `registry.local:5000/app:1`), for an
    /// archive that does not name its image or names only its tag; a name without a tag takes
    /// the archive's tag, else `latest`.
    #[arg(long, value_name = "REF")]
    name: Option<String>,
    #[command(flatten)]
    data: DataDirArgs,
}

/// `nanokube image …`: prints as `docker load` (progress on stderr, `Loaded image: …` on
/// stdout) and `crictl images` do.
fn run_image(args: ImageArgs) -> Result<()> {
    use nanokube_kubelet::image::{ImageStore, human_size, short_id};
    match args.command {
        ImageCommand::Import(import) => {
            let dir = data_dir(&import.data.data_dir)?;
            nanokube_apiserver::pki::ensure_private_dir(&dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            let store = ImageStore::in_data_dir(&dir);
            let tagged = store
                .import(&import.file, import.name.as_deref(), &mut |progress| {
                    eprintln!("{progress}")
                })
                .with_context(|| format!("importing {}", import.file.display()))?;
            for reference in tagged {
                println!("Loaded image: {reference}");
            }
            Ok(())
        }
        ImageCommand::Ls(data) => {
            let store = ImageStore::in_data_dir(&data_dir(&data.data_dir)?);
            let images = store
                .list()
                .with_context(|| format!("reading the image store {}", store.dir().display()))?;
            let mut rows = vec![[
                "IMAGE".to_string(),
                "TAG".to_string(),
                "IMAGE ID".to_string(),
                "SIZE".to_string(),
            ]];
            for image in images {
                rows.push([
                    image.repository,
                    image.tag,
                    short_id(&image.id).to_string(),
                    human_size(image.size),
                ]);
            }
            print!("{}", image_table(&rows));
            Ok(())
        }
    }
}

/// Aligns columns as crictl's tabwriter does (each cell but the last padded by three spaces
/// to at least 20 characters).
fn image_table(rows: &[[String; 4]]) -> String {
    let mut widths = [0usize; 3];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max((cell.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (width, cell) in widths.iter().zip(row) {
            out.push_str(&format!("{cell:<width$}"));
        }
        out.push_str(&row[3]);
        out.push('\n');
    }
    out
}
