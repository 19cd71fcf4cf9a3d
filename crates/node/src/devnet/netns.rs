//! A devnet where every agent runs in its own Linux network namespace with its own address, as
//! real operators run each agent on its own machine: nothing can silently depend on `127.0.0.1`
//! (an endpoint announced as loopback, a server bound to it, a peer assumed local).
//!
//! The network is made here and removed when the devnet ends: a bridge in this namespace holding
//! the host address `10.<a>.<b>.1/24` (anvil binds it), and per agent a namespace with its
//! loopback up and one end of a veth pair (`10.<a>.<b>.<10 + i>`) whose other end is on the
//! bridge. Nothing is routed outside the machine. Needs root and iproute2 (`ip`); see
//! [`Netns::available`].

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::network::NetworkError;

/// The bridge, the namespaces made so far and the next free address; removed on drop.
#[derive(Debug)]
pub struct Netns {
    /// Short unique tag of this devnet's names (interface names are at most 15 bytes).
    tag: String,
    bridge: String,
    subnet: [u8; 3],
    namespaces: Vec<String>,
}

/// Runs `ip args…`; an error names the command and what `ip` said.
fn ip(args: &[&str]) -> Result<(), NetworkError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetworkError::Other(format!("running `ip {}`: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Other(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Netns {
    /// Whether this machine lets this process make network namespaces (root and iproute2), and
    /// if not, why.
    pub fn available() -> Result<(), String> {
        let probe = format!("autonet-probe-{}", std::process::id());
        ip(&["netns", "add", &probe]).map_err(|e| {
            format!("network namespaces are not available (root and iproute2 needed): {e}")
        })?;
        let _ = ip(&["netns", "del", &probe]);
        Ok(())
    }

    /// Makes the bridge and its host address.
    pub fn create() -> Result<Self, NetworkError> {
        let pid = std::process::id();
        // A /24 of 10.0.0.0/8 derived from the process id, so two devnets do not collide.
        let subnet = [10, 100 + (pid / 250 % 100) as u8, (pid % 250) as u8 + 1];
        let tag = format!("{:x}", pid % 0xff_ffff);
        let net = Netns {
            bridge: format!("anb{tag}"),
            tag,
            subnet,
            namespaces: Vec::new(),
        };
        let host = format!("{}/24", net.host());
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &host, "dev", &net.bridge])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        Ok(net)
    }

    /// The address of this namespace on the bridge (anvil binds it).
    pub fn host(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], 1)
    }

    /// Makes the namespace of agent `name`: its loopback, a veth pair to the bridge and its own
    /// address, which it returns with the namespace's name.
    pub fn add(&mut self, name: &str) -> Result<(String, Ipv4Addr), NetworkError> {
        let i = self.namespaces.len();
        if i >= 200 {
            return Err(NetworkError::Other(format!(
                "no address left for {name} on the devnet bridge"
            )));
        }
        let ns = format!("autonet-{}-{name}", self.tag);
        let host_end = format!("anv{}x{i}", self.tag);
        let peer_end = format!("anp{}x{i}", self.tag);
        let addr = Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], 10 + i as u8);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &peer_end,
        ])?;
        ip(&["link", "set", &peer_end, "netns", &ns])?;
        ip(&["link", "set", &host_end, "master", &self.bridge])?;
        ip(&["link", "set", &host_end, "up"])?;
        let cidr = format!("{addr}/24");
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "addr", "add", &cidr, "dev", &peer_end])?;
        ip(&["-n", &ns, "link", "set", &peer_end, "up"])?;
        Ok((ns, addr))
    }

    /// A command that runs `program` inside namespace `ns` (`ip netns exec` replaces itself with
    /// the program, so the child's pid is the program's).
    pub fn command(ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Netns {
    /// Deletes every namespace (which destroys its veth pair) and the bridge.
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..) {
            let _ = ip(&["netns", "del", &ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
