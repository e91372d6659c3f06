//! One real HAProxy for many routes: a frontend and a backend per lane (`laneNN`, with
//! servers `stable` at weight 100 and `canary` at weight 0), so analyses on different
//! lanes never share a route, and load on every frontend.

use std::time::Duration;

use tempfile::TempDir;

use super::{Load, Process, free_port, runtime_api, wait_for};

pub struct LaneHaproxy {
    /// The Runtime API's port.
    pub admin: u16,
    pub frontends: Vec<u16>,
    _process: Process,
    _dir: TempDir,
}

fn config(admin: u16, frontends: &[u16], pair: &dyn Fn(usize) -> (u16, u16)) -> String {
    let mut config = format!(
        "global\n    stats socket ipv4@127.0.0.1:{admin} level admin\n    maxconn 4096\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
    );
    for (lane, port) in frontends.iter().enumerate() {
        let (stable, canary) = pair(lane);
        config.push_str(&format!(
            "frontend f{lane:02}\n    bind 127.0.0.1:{port}\n    default_backend lane{lane:02}\n\
             backend lane{lane:02}\n    balance roundrobin\n    server stable 127.0.0.1:{stable} weight 100\n    \
             server canary 127.0.0.1:{canary} weight 0\n"
        ));
    }
    config
}

impl LaneHaproxy {
    /// `lanes` lanes; `pair(lane)` gives the (stable, canary) ports lane `lane` splits.
    pub async fn start(lanes: usize, pair: impl Fn(usize) -> (u16, u16)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = free_port();
        let frontends: Vec<u16> = (0..lanes).map(|_| free_port()).collect();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config(admin, &frontends, &pair)).unwrap();
        let process = Process::spawn(
            "haproxy",
            std::process::Command::new("haproxy")
                .arg("-f")
                .arg(&file)
                .arg("-db"),
            dir.path().join("haproxy.log"),
        );
        wait_for("HAProxy's Runtime API", Duration::from_secs(15), || async {
            runtime_api(admin, "show info")
                .ok()
                .filter(|r| r.contains("Name:"))
                .map(|_| ())
        })
        .await;
        Self {
            admin,
            frontends,
            _process: process,
            _dir: dir,
        }
    }

    /// `rate` requests per second through every lane's frontend.
    pub fn load(&self, rate: u32) -> Vec<Load> {
        self.frontends
            .iter()
            .map(|port| Load::start(format!("http://127.0.0.1:{port}/"), rate))
            .collect()
    }
}
