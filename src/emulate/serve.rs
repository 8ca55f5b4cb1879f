//! The listeners of an emulated lab, served by reachlab itself: one thread per listener, inside
//! its node's namespace. An SSH or banner service sends its line, an HTTP service reads the
//! request and answers (or answers `502 Bad Gateway` when a backend it `requires` does not
//! accept a TCP connection from it, as the simulator predicts), a plain TCP service accepts,
//! and UDP echoes. `up` runs them in a detached `reachlab emulate serve` process; tests run them
//! in-process. Stopping closes every socket, so no namespace is kept alive by a socket.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::model::{Listener, Network, PROXY_TRIES, Proto, Service};

use super::names::Layout;
use super::netns::{NETNS_DIR, enter};
use super::{EmulateError, arp_responder};

/// How long a stopped server may take to notice.
const POLL: Duration = Duration::from_millis(20);
/// How long an HTTP service waits for a backend's handshake before answering 502.
pub const BACKEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Running listeners; dropping them stops and joins every thread.
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Binds every listener of `net` in its node's namespace, and returns once all are bound.
    pub fn start(net: &Network, layout: &Layout) -> Result<Servers, EmulateError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = Servers {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut count = 0;
        for node in &net.nodes {
            for listener in &node.listeners {
                let path = PathBuf::from(NETNS_DIR).join(layout.node(node.id));
                let listener = listener.clone();
                let node_name = node.name.clone();
                let ready = ready_tx.clone();
                let stop = stop.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("listener {node_name}:{}", listener.port))
                    .spawn(move || serve(&path, &node_name, &listener, &stop, &ready))
                    .map_err(|e| EmulateError::io("starting a listener thread", e))?;
                servers.threads.push(thread);
                count += 1;
            }
        }
        count += servers.arp_responders(net, layout, &ready_tx)?;
        drop(ready_tx);
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(EmulateError::Command {
                        what: "starting the listeners".into(),
                        message: "a listener thread ended before binding".into(),
                    });
                }
            }
        }
        Ok(servers)
    }

    /// Starts a user-space ARP responder for each interface that answers ARP for addresses
    /// its node does not hold (`answers_arp_for`); returns how many.
    fn arp_responders(
        &mut self,
        net: &Network,
        layout: &Layout,
        ready: &Ready,
    ) -> Result<usize, EmulateError> {
        let mut count = 0;
        for iface in net
            .interfaces
            .iter()
            .filter(|i| !i.answers_arp_for.is_empty())
        {
            let path = PathBuf::from(NETNS_DIR).join(layout.node(iface.node));
            let node = net.node(iface.node).name.clone();
            let (name, addresses) = (iface.name.clone(), iface.answers_arp_for.clone());
            let (ready, stop) = (ready.clone(), self.stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("arp {node}:{name}"))
                .spawn(
                    move || match arp_responder::open(&path, &node, &name, addresses) {
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                        Ok(responder) => {
                            let _ = ready.send(Ok(()));
                            responder.run(&stop);
                        }
                    },
                )
                .map_err(|e| EmulateError::io("starting an ARP responder thread", e))?;
            self.threads.push(thread);
            count += 1;
        }
        Ok(count)
    }

    /// How many listeners run.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

type Ready = mpsc::Sender<Result<(), EmulateError>>;

fn serve(
    netns: &std::path::Path,
    node: &str,
    listener: &Listener,
    stop: &AtomicBool,
    ready: &Ready,
) {
    let bound = enter(netns).and_then(|()| bind(node, listener));
    match bound {
        Err(e) => {
            let _ = ready.send(Err(e));
        }
        Ok(Bound::Tcp(socket)) => {
            let _ = ready.send(Ok(()));
            serve_tcp(&socket, &listener.service, stop);
        }
        Ok(Bound::Udp(socket)) => {
            let _ = ready.send(Ok(()));
            serve_udp(&socket, !listener.reply_from_route, stop);
        }
    }
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn bind(node: &str, listener: &Listener) -> Result<Bound, EmulateError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(
        listener.bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
        listener.port.get(),
    ));
    let what = format!(
        "listening on {addr}/{} on `{node}`",
        listener.proto.as_str()
    );
    let fail = |e: std::io::Error| EmulateError::io(what.clone(), e);
    let socket = match listener.proto {
        Proto::Tcp => Socket::new(Domain::IPV4, Type::STREAM, None),
        Proto::Udp => Socket::new(Domain::IPV4, Type::DGRAM, None),
    }
    .map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    // An address the node does not have yet (a bind to a floating address) still binds.
    socket.set_freebind_v4(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    Ok(match listener.proto {
        Proto::Tcp => {
            socket.listen(128).map_err(fail)?;
            socket.set_nonblocking(true).map_err(fail)?;
            Bound::Tcp(socket.into())
        }
        Proto::Udp => {
            socket.set_read_timeout(Some(POLL * 5)).map_err(fail)?;
            Bound::Udp(socket.into())
        }
    })
}

fn serve_tcp(socket: &TcpListener, service: &Service, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match socket.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                answer(conn, service);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn answer(mut conn: TcpStream, service: &Service) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    match service {
        Service::Ssh { banner } => {
            let _ = conn.write_all(format!("{banner}\r\n").as_bytes());
        }
        Service::Banner(line) => {
            let _ = conn.write_all(format!("{line}\r\n").as_bytes());
        }
        Service::Http {
            status,
            body,
            content_type,
            requires,
            routes,
        } => {
            let request = read_request(&mut conn);
            if let Some(&(addr, port)) = requires
                .iter()
                .find(|&&(addr, port)| !backend_answers(addr, port.get()))
            {
                let body = format!("Bad Gateway: cannot reach backend {addr}:{port}\n");
                write_answer(&mut conn, 502, &body, "text/plain");
            } else if let Some(route) = request_target(&request)
                .and_then(|(host, path)| crate::model::route(routes, &host, &path))
            {
                proxy(&mut conn, route, &request);
            } else {
                write_answer(&mut conn, *status, body, content_type);
            }
        }
        Service::Plain => {}
    }
    let _ = conn.flush();
}

/// Reads the request head (up to the blank line).
fn read_request(conn: &mut TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    request
}

/// The Host header (empty when absent) and the path of a request head.
fn request_target(request: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(request);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let host = lines
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    Some((host, path))
}

/// An answer with `status` and `body`, and the connection closed after it.
fn write_answer(conn: &mut TcpStream, status: u16, body: &str, content_type: &str) {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        crate::model::http_reason(status),
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
}

/// Relays `request` to the route's upstreams as the simulator predicts a reverse proxy does
/// (`crate::run`): the first of at most [`PROXY_TRIES`] that accepts within
/// [`BACKEND_TIMEOUT`] gets the request, and its answer goes back as it came (`502` when it is
/// no HTTP answer); none: `504` when the last one timed out, `502` otherwise; no upstream at
/// all: `503`. The error answers carry nginx's error page.
fn proxy(conn: &mut TcpStream, route: &crate::model::HttpRoute, request: &[u8]) {
    let mut status = 503;
    for &(addr, port) in route.upstreams.iter().take(PROXY_TRIES) {
        let target = SocketAddr::V4(SocketAddrV4::new(addr, port.get()));
        match TcpStream::connect_timeout(&target, BACKEND_TIMEOUT) {
            Ok(mut upstream) => {
                let _ = upstream.set_read_timeout(Some(BACKEND_TIMEOUT * 4));
                let _ = upstream.write_all(request);
                let mut answer = Vec::new();
                let _ = upstream.read_to_end(&mut answer);
                if answer.starts_with(b"HTTP/") {
                    let _ = conn.write_all(&answer);
                    return;
                }
                status = 502;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => status = 504,
            Err(_) => status = 502,
        }
    }
    write_answer(
        conn,
        status,
        &crate::model::proxy_error_page(status),
        "text/html",
    );
}

/// Whether a backend accepts a TCP connection from this namespace (the thread is inside it).
fn backend_answers(addr: Ipv4Addr, port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::V4(SocketAddrV4::new(addr, port)),
        BACKEND_TIMEOUT,
    )
    .is_ok()
}

/// Echoes each datagram back from the address it was sent to (IP_PKTINFO, as DNS servers
/// answer), not from the address the route back would pick: a client's connected socket
/// takes only an answer from where it sent (docs/topology-format.md, "Listen"). Without
/// `pktinfo` (`udp_reply_from: route`) a plain `send_to`, whose source the kernel picks.
fn serve_udp(socket: &UdpSocket, pktinfo: bool, stop: &AtomicBool) {
    use nix::sys::socket::{
        ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
        sockopt::Ipv4PacketInfo,
    };
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;
    let pktinfo = pktinfo && setsockopt(socket, Ipv4PacketInfo, &true).is_ok();
    let fd = socket.as_raw_fd();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if !pktinfo {
            if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], peer);
            }
            continue;
        }
        let mut space = nix::cmsg_space!(nix::libc::in_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut space), MsgFlags::empty())
        else {
            continue;
        };
        let (n, peer) = (msg.bytes, msg.address);
        let to = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::Ipv4PacketInfo(info) => Some(info.ipi_addr),
                _ => None,
            })
        });
        let (Some(peer), Some(to)) = (peer, to) else {
            continue;
        };
        let info = nix::libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: to,
            ipi_addr: nix::libc::in_addr { s_addr: 0 },
        };
        let data = [IoSlice::new(&buf[..n])];
        let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
        let _ = sendmsg(fd, &data, &cmsg, MsgFlags::empty(), Some(&peer));
    }
}
