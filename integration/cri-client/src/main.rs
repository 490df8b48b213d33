//! One Kubernetes pod through containerd's CRI (runtime.v1), as the kubelet runs a pod whose
//! RuntimeClass names HANDLER: a sandbox and two containers sharing its network and IPC
//! namespaces, exec sync, the containers' logs, stats, one shim process for the pod, stop and
//! remove. Every step is checked; the first failure ends the run with its reason (exit 1) after
//! the pod is removed.
//!
//! usage: cri-pod-test SOCKET run HANDLER SHIM NETWORK LOGDIR CGROUP_PARENT IMAGE IDFILE
//!          SHIM: the shim binary's name (its processes are counted); NETWORK: pod or node.
//!          Prints the first container's log lines; appends the pod's and containers' ids to
//!          IDFILE as they are made.
//!        cri-pod-test SOCKET cleanup          stops and removes every pod sandbox

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

type Client = RuntimeServiceClient<Channel>;
type Result<T> = std::result::Result<T, String>;

struct Pod {
    handler: String,
    shim: String,
    socket: String,
    network: NamespaceMode,
    log_dir: String,
    cgroup_parent: String,
    image: String,
    id_file: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        let mut client = connect(&args[0]).await?;
        match args.get(1).map(String::as_str) {
            Some("run") if args.len() == 9 => {
                let pod = Pod {
                    socket: args[0].clone(),
                    handler: args[2].clone(),
                    shim: args[3].clone(),
                    network: match args[4].as_str() {
                        "pod" => NamespaceMode::Pod,
                        "node" => NamespaceMode::Node,
                        other => return Err(format!("NETWORK {other:?}: use pod or node")),
                    },
                    log_dir: args[5].clone(),
                    cgroup_parent: args[6].clone(),
                    image: args[7].clone(),
                    id_file: args[8].clone(),
                };
                run(&mut client, &pod).await
            }
            Some("cleanup") => cleanup(&mut client).await,
            _ => Err(
                "usage: cri-pod-test SOCKET run HANDLER SHIM NETWORK LOGDIR CGROUP_PARENT \
                      IMAGE IDFILE | SOCKET cleanup"
                    .into(),
            ),
        }
    });
    if let Err(e) = outcome {
        eprintln!("cri-pod-test: {e}");
        std::process::exit(1);
    }
}

async fn connect(socket: &str) -> Result<Client> {
    let path = socket.to_string();
    // The URI is unused: the connector dials the unix socket.
    let channel = Endpoint::from_static("http://[::]:0")
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| format!("connect to {socket}: {e}"))?;
    Ok(RuntimeServiceClient::new(channel))
}

fn failed(call: &str) -> impl Fn(tonic::Status) -> String + '_ {
    move |status| format!("{call}: {}", status.message())
}

fn record(id_file: &str, id: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(id_file)
        .map_err(|e| format!("open {id_file}: {e}"))?;
    writeln!(file, "{id}").map_err(|e| format!("write {id_file}: {e}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        eprintln!("ok: {}", what().lines().next().unwrap_or_default());
        Ok(())
    } else {
        Err(format!("check failed: {}", what()))
    }
}

async fn run(client: &mut Client, pod: &Pod) -> Result<()> {
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "mrt-pod".into(),
            uid: "mrt-pod-uid".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        // A hostname needs the pod's own UTS namespace, which host network does not give.
        hostname: if pod.network == NamespaceMode::Pod {
            "mrt-pod".into()
        } else {
            String::new()
        },
        log_directory: pod.log_dir.clone(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: pod.cgroup_parent.clone(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: pod.network.into(),
                    pid: NamespaceMode::Container.into(),
                    ipc: NamespaceMode::Pod.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: pod.handler.clone(),
        })
        .await
        .map_err(failed("RunPodSandbox"))?
        .into_inner()
        .pod_sandbox_id;
    record(&pod.id_file, &sandbox)?;
    let checked = check_pod(client, pod, &sandbox, &config).await;
    let removed = remove_pod(client, &sandbox).await;
    checked.and(removed)?;
    // The pod's shim leaves with its last container.
    let mut shims = shim_processes(pod);
    for _ in 0..50 {
        if shims.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shims = shim_processes(pod);
    }
    check(shims.is_empty(), || {
        format!("no {} process left after the pod ({shims:?})", pod.shim)
    })
}

async fn check_pod(
    client: &mut Client,
    pod: &Pod,
    sandbox: &str,
    config: &PodSandboxConfig,
) -> Result<()> {
    let mut containers = Vec::new();
    for name in ["first", "second"] {
        let id = client
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.into(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: pod.image.clone(),
                        ..Default::default()
                    }),
                    command: vec!["sh".into(), "-c".into()],
                    args: vec![format!(
                        "echo \"cri-log {name} uid=$(id -u)\"; exec sleep 300"
                    )],
                    log_path: format!("{name}.log"),
                    ..Default::default()
                }),
                sandbox_config: Some(config.clone()),
            })
            .await
            .map_err(failed("CreateContainer"))?
            .into_inner()
            .container_id;
        record(&pod.id_file, &id)?;
        client
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(failed("StartContainer"))?;
        containers.push((name, id));
    }

    // Both containers see the sandbox's network and IPC namespaces.
    let mut namespaces = Vec::new();
    for (_, id) in &containers {
        let script = "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc";
        let out = exec_sync(client, id, &["sh", "-c", script]).await?;
        check(out.exit_code == 0, || {
            format!("exec sync readlink in {id}: {}", shown(&out))
        })?;
        namespaces.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let host = |ns: &str| {
        fs::read_link(format!("/proc/self/ns/{ns}"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let lines: Vec<&str> = namespaces[0].lines().collect();
    check(namespaces[0] == namespaces[1] && lines.len() == 2, || {
        format!("the containers share network and IPC namespaces: {namespaces:?}")
    })?;
    check(lines[1] != host("ipc"), || {
        format!("the pod's IPC namespace ({}) is not the host's", lines[1])
    })?;
    let pod_network = pod.network == NamespaceMode::Pod;
    check((lines[0] != host("net")) == pod_network, || {
        let whose = if pod_network {
            "the pod's own"
        } else {
            "the host's"
        };
        format!("the network namespace ({}) is {whose}", lines[0])
    })?;

    // Exec sync returns its output and exit code.
    let first = &containers[0].1;
    let out = exec_sync(
        client,
        first,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    )
    .await?;
    check(
        (out.exit_code, &out.stdout[..], &out.stderr[..]) == (3, b"out\n", b"err\n"),
        || format!("exec sync output and exit code: {}", shown(&out)),
    )?;

    // The containers' output reaches their CRI logs.
    for (name, _) in &containers {
        let path = Path::new(&pod.log_dir).join(format!("{name}.log"));
        let want = format!("cri-log {name} uid=");
        let mut log = String::new();
        for _ in 0..50 {
            log = fs::read_to_string(&path).unwrap_or_default();
            if log.contains(&want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        check(log.contains(&want), || {
            format!("{} holds {want:?}: {log:?}", path.display())
        })?;
        if *name == "first" {
            // CRI log lines: "<time> <stream> <tag> <text>".
            for line in log.lines() {
                println!("{}", line.splitn(4, ' ').last().unwrap_or_default());
            }
        }
    }

    // Stats from the container's cgroup.
    let stats = client
        .container_stats(ContainerStatsRequest {
            container_id: first.clone(),
        })
        .await
        .map_err(failed("ContainerStats"))?
        .into_inner()
        .stats
        .unwrap_or_default();
    let memory = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map_or(0, |v| v.value);
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map_or(0, |v| v.value);
    check(memory > 0 && cpu > 0, || {
        format!("stats: memory working set {memory} B, cpu {cpu} ns (both > 0)")
    })?;

    // One shim serves the whole pod.
    let shims = shim_processes(pod);
    check(shims.len() == 1, || {
        format!("one {} process for the pod: {shims:?}", pod.shim)
    })?;

    for (name, id) in &containers {
        client
            .stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: 10,
            })
            .await
            .map_err(failed("StopContainer"))?;
        let status = client
            .container_status(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .map_err(failed("ContainerStatus"))?
            .into_inner()
            .status
            .unwrap_or_default();
        check(status.state() == ContainerState::ContainerExited, || {
            format!("{name} exited after StopContainer: {:?}", status.state())
        })?;
        client
            .remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(failed("RemoveContainer"))?;
    }
    Ok(())
}

async fn exec_sync(client: &mut Client, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse> {
    Ok(client
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        })
        .await
        .map_err(failed("ExecSync"))?
        .into_inner())
}

fn shown(out: &ExecSyncResponse) -> String {
    format!(
        "exit code {}, stdout {:?}, stderr {:?}",
        out.exit_code,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn remove_pod(client: &mut Client, sandbox: &str) -> Result<()> {
    client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sandbox.into(),
        })
        .await
        .map_err(failed("StopPodSandbox"))?;
    client
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sandbox.into(),
        })
        .await
        .map_err(failed("RemovePodSandbox"))?;
    Ok(())
}

/// The pids of the live shim processes serving this containerd (by its socket on the command
/// line).
fn shim_processes(pod: &Pod) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_shim = Path::new(std::str::from_utf8(args.first()?).ok()?)
                .file_name()
                .is_some_and(|name| name == pod.shim.as_str());
            let serves_ours = args
                .windows(2)
                .any(|w| w[0] == b"-address" && w[1] == pod.socket.as_bytes());
            (is_shim && serves_ours).then_some(pid)
        })
        .collect()
}

async fn cleanup(client: &mut Client) -> Result<()> {
    let pods = client
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await
        .map_err(failed("ListPodSandbox"))?
        .into_inner()
        .items;
    for sandbox in pods {
        remove_pod(client, &sandbox.id).await?;
    }
    Ok(())
}
