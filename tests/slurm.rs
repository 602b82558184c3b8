//! The scale-out path on a real Slurm (Debian's slurmctld, slurmd and munge, 22.05): the test starts its own
//! single-node cluster (munged, slurmctld, slurmd, all in a temporary folder, on free local ports, no cgroups), submits
//! deploy/slurm/submit.sh's chain — a 3-task distillation array of a small DM+HDD run, the dependent merge, a 2-part
//! evaluation array and its merge — waits with a bound, and compares the merged set with the unsplit run of the same
//! seed (identical image bytes) and the merged evaluation with the unsplit one. It stops its daemons whatever happens.
//! Where the Slurm programs are not installed it says so and does not run (CI installs them: .ci/run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hyperdistill");

fn have(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|d| Path::new(d).join(program).exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The cluster's daemons, stopped on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<Child>,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        let key = dir.join("munge.key");
        std::fs::write(&key, (0..1024).map(|i| (i * 131 % 251) as u8).collect::<Vec<u8>>()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let sock = dir.join("munge.sock");
        let d = |f: &str| dir.join(f).display().to_string();
        let munged = Command::new("munged")
            .args(["--foreground", "--force", &format!("--key-file={}", key.display()), &format!("--socket={}", sock.display())])
            .args([format!("--pid-file={}", d("munged.pid")), format!("--log-file={}", d("munged.log")), format!("--seed-file={}", d("munged.seed"))])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("munged starts");
        let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=hdtest\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={}\nSlurmdPort={}\nAuthType=auth/munge\nAuthInfo=socket={}\n\
                 CredType=cred/munge\nMpiDefault=none\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nReturnToService=2\n\
                 SlurmUser=root\nSlurmdUser=root\nSlurmctldPidFile={}\nSlurmdPidFile={}\nSlurmdSpoolDir={}\nStateSaveLocation={}\n\
                 SwitchType=switch/none\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
                 AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\n\
                 SlurmctldLogFile={}\nSlurmdLogFile={}\nNodeName=hdnode NodeHostname={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
                 PartitionName=debug Nodes=hdnode Default=YES MaxTime=INFINITE State=UP\n",
                free_port(),
                free_port(),
                sock.display(),
                d("slurmctld.pid"),
                d("slurmd.pid"),
                d("spool"),
                d("state"),
                d("slurmctld.log"),
                d("slurmd.log"),
            ),
        )
        .unwrap();
        let mut c = Cluster { dir: dir.to_path_buf(), conf, daemons: vec![munged] };
        // munged first: both Slurm daemons authenticate through it
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sock.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (prog, extra) in [("slurmctld", vec!["-D", "-i"]), ("slurmd", vec!["-D", "-N", "hdnode"])] {
            let child = Command::new(prog)
                .args(&extra)
                .args(["-f", c.conf.to_str().unwrap()])
                .env("SLURM_CONF", &c.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{prog} starts: {e}"));
            c.daemons.push(child);
        }
        // up once the node is idle
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = c.cmd("sinfo", &["-h", "-o", "%t"]);
            if out.trim() == "idle" {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not come up (sinfo: {out:?}); logs in {}", c.dir.display());
            std::thread::sleep(Duration::from_millis(500));
        }
        c
    }

    fn cmd(&self, prog: &str, args: &[&str]) -> String {
        let out = Command::new(prog).args(args).env("SLURM_CONF", &self.conf).output().unwrap_or_else(|e| panic!("{prog}: {e}"));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("scontrol").arg("shutdown").env("SLURM_CONF", &self.conf).output();
        std::thread::sleep(Duration::from_millis(500));
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// The bytes of a tensor in a safetensors file.
fn tensor(path: &Path, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(name).unwrap().data().to_vec()
}

#[test]
fn a_split_run_on_slurm_equals_the_unsplit_run() {
    let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol"].into_iter().filter(|p| !have(p)).collect();
    if !missing.is_empty() {
        // not a pass in disguise: it says that it did not run (CI installs the packages in .ci/run)
        println!("Slurm not installed (missing {missing:?}): the Slurm test did not run; apt-get install slurmctld slurmd munge");
        return;
    }
    let dir = std::env::temp_dir().join(format!("hd-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = Cluster::start(&dir.join("cluster"));
    let run = dir.join("run");
    let distill = ["--method", "dm+hdd", "--ipc", "2", "--iterations", "3", "--width", "8", "--batch-real", "8", "--seed", "4"];
    let eval = ["--epochs", "2", "--nets", "4", "--width", "8", "--seed", "2"];
    let submit = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/slurm/submit.sh");
    let out = Command::new("bash")
        .arg(&submit)
        .args([run.to_str().unwrap(), "3", "2"])
        .args(distill)
        .arg("--")
        .args(eval)
        .env("SLURM_CONF", &cluster.conf)
        .env("HYPERDISTILL", BIN)
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .current_dir(&dir)
        .output()
        .unwrap();
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "submit.sh failed");
    // wait, bounded, until the queue is empty
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let q = cluster.cmd("squeue", &["-h", "-o", "%i %T %r"]);
        if q.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "jobs still queued after 600 s:\n{q}");
        std::thread::sleep(Duration::from_secs(1));
    }
    for f in std::fs::read_dir(&dir).unwrap().flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".out")) {
        println!("--- {}\n{}", f.path().display(), std::fs::read_to_string(f.path()).unwrap_or_default());
    }
    let merged = run.join("merged/synset.safetensors");
    assert!(merged.exists(), "the merge job wrote no set");
    // the unsplit run, same seed, same binary
    let whole = dir.join("whole");
    let st = Command::new(BIN).arg("distill").args(distill).args(["--eval-nets", "0", "--out", whole.to_str().unwrap()]).status().unwrap();
    assert!(st.success());
    let (a, b) = (tensor(&whole.join("synset.safetensors"), "images"), tensor(&merged, "images"));
    println!("merged set: {} image bytes, identical to the unsplit run: {}", b.len(), a == b);
    assert_eq!(a, b, "the merged shards differ from the unsplit run");
    assert_eq!(tensor(&whole.join("synset.safetensors"), "labels"), tensor(&merged, "labels"));
    // the split evaluation against the unsplit one
    let merged_eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("eval/eval.json")).unwrap()).unwrap();
    let one = Command::new(BIN).args(["eval", "--synset", merged.to_str().unwrap()]).args(eval).output().unwrap();
    let text = String::from_utf8_lossy(&one.stdout);
    println!("unsplit evaluation: {text}split: {}", merged_eval["accuracies"]);
    let accs: Vec<f64> = merged_eval["accuracies"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let listed = text.rsplit('[').next().unwrap().trim().trim_end_matches(']');
    let unsplit: Vec<f64> = listed.split(',').map(|v| v.trim().parse().unwrap()).collect();
    assert_eq!(accs, unsplit, "the merged evaluation differs from the unsplit one");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
