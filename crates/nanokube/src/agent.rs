//! `nanokube agent`: the node agent on its own, for a machine other than the server's. It is
//! the same code `nanokube server` runs in-process, talking to the API over HTTPS with the
//! node's own credentials.

use anyhow::{Context, Result, bail};
use clap::Args;
use kube::config::{
    AuthInfo, Cluster, Context as KubeContext, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;

#[derive(Args)]
pub struct AgentArgs {
    /// The API server's URL (e.g. https://10.0.0.1:6443); with --token and
    /// --certificate-authority. Alternatively --kubeconfig.
    #[arg(long, requires = "token", conflicts_with = "kubeconfig")]
    server: Option<String>,
    /// A bearer token for --server. The node's user should be `system:node:<node-name>` in
    /// group `system:nodes`, which the `system:node` ClusterRole is bound to.
    #[arg(long, requires = "server")]
    token: Option<String>,
    /// The CA certificate (PEM) that signed the server's certificate, for --server.
    #[arg(long, requires = "server")]
    certificate_authority: Option<PathBuf>,
    /// A kubeconfig with the node's credentials (its current context is used).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The name this machine registers as [default: the host name].
    #[arg(long)]
    node_name: Option<String>,
    /// This machine's address as the server and pods see it [default: the local address
    /// used to reach the server].
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// Where pod state and logs live [default: $XDG_DATA_HOME/nanokube-agent or
    /// ~/.local/share/nanokube-agent].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

async fn client_config(args: &AgentArgs) -> Result<kube::Config> {
    let kubeconfig = match (&args.kubeconfig, &args.server) {
        (Some(path), _) => {
            Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(server)) => Kubeconfig {
            clusters: vec![NamedCluster {
                name: "nanokube".into(),
                cluster: Some(Cluster {
                    server: Some(server.clone()),
                    certificate_authority: args
                        .certificate_authority
                        .as_ref()
                        .map(|p| p.display().to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: "node".into(),
                auth_info: Some(AuthInfo {
                    token: args.token.clone().map(Into::into),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            contexts: vec![NamedContext {
                name: "node".into(),
                context: Some(KubeContext {
                    cluster: "nanokube".into(),
                    user: Some("node".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            current_context: Some("node".into()),
            ..Default::default()
        },
        (None, None) => {
            bail!("say which API server to join: --server URL --token T, or --kubeconfig FILE")
        }
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("loading the client configuration")
}

/// The local address this machine uses to reach `host:port` (no packet is sent).
fn local_address_towards(host: &str, port: u16) -> Option<IpAddr> {
    let target = (host, port).to_socket_addrs().ok()?.next()?;
    let bind: IpAddr = if target.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([0u16; 8])
    };
    let socket = UdpSocket::bind((bind, 0)).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

pub async fn run(args: AgentArgs) -> Result<()> {
    let config = client_config(&args).await?;
    let url = config.cluster_url.clone();
    let api_host = url
        .host()
        .context("the server URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let api_port = url.port_u16().unwrap_or(443);
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => local_address_towards(&api_host, api_port).with_context(|| {
            format!("finding this machine's address towards {api_host}; pass --node-ip")
        })?,
    };
    let client = kube::Client::try_from(config).context("creating the API client")?;
    let who = client
        .apiserver_version()
        .await
        .with_context(|| format!("reaching the API server at {url}"))?;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(x) => PathBuf::from(x).join("nanokube-agent"),
            None => PathBuf::from(
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?,
            )
            .join(".local/share/nanokube-agent"),
        },
    };
    nanokube_apiserver::pki::ensure_private_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let pods_dir = dir.join("pods");
    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(nanokube_kubelet::node::default_node_name);
    println!(
        "nanokube agent: node {node_name} ({node_ip}) joining {url} (Kubernetes {}.{})",
        who.major, who.minor
    );
    let node = tokio::spawn(nanokube_kubelet::node::run(
        client.clone(),
        nanokube_kubelet::node::NodeConfig {
            node_name: node_name.clone(),
            internal_ip: node_ip.to_string(),
            pods_dir: pods_dir.clone(),
            control_plane: false,
        },
    ));
    let pods = tokio::spawn(nanokube_kubelet::pod_worker::run(
        client,
        nanokube_kubelet::pod_worker::PodRuntimeConfig {
            node_name,
            pods_dir,
            api_host,
            api_port,
            host_ip: node_ip.to_string(),
            runtime_binary: Some(PathBuf::from("/proc/self/exe")),
            images: Some(nanokube_kubelet::image::ImageStore::in_data_dir(&dir)),
        },
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: stopping"),
        _ = pods => tracing::info!("the API server went away: stopping"),
    }
    node.abort();
    Ok(())
}
