//! A DHCPv4 client for `vyoma.net=dhcp`: DISCOVER, OFFER, REQUEST, ACK on the chosen
//! interface (messages encoded and decoded by `dhcproto`), then renewal at half the lease
//! ([`renew`]). The message logic ([`discover`], [`request`], [`read_reply`]) is pure and
//! unit-tested; [`acquire`] and [`renew`] do the socket work (UDP port 68 bound to the
//! interface, broadcast, as the interface has no address yet).
//!
//! Written here rather than taken whole from a crate: the Rust DHCP clients on crates.io
//! either shell out, pull in a second async runtime, or are unmaintained; the protocol part
//! that matters (the wire format) is `dhcproto`'s.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

/// What a DHCP server granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length (from the subnet mask).
    pub prefix: u8,
    /// The default gateway, if the server named one.
    pub router: Option<Ipv4Addr>,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// How long the lease lasts.
    pub lease_secs: u32,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An offer of an address.
    Offer(Lease),
    /// The request was granted.
    Ack(Lease),
    /// The request was refused.
    Nak,
}

fn encode(m: &Message) -> Vec<u8> {
    let mut buf = Vec::with_capacity(300);
    // Encoding into a Vec cannot fail for a message built here.
    let _ = m.encode(&mut Encoder::new(&mut buf));
    buf
}

fn base(xid: u32, mac: &[u8], kind: MessageType) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(xid)
        .set_flags(Flags::default().set_broadcast())
        .set_chaddr(mac);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::AddressLeaseTime,
    ]));
    m
}

/// The DISCOVER for transaction `xid` from hardware address `mac`.
pub fn discover(xid: u32, mac: &[u8]) -> Vec<u8> {
    encode(&base(xid, mac, MessageType::Discover))
}

/// The REQUEST for `lease` (after its offer; with `renewing`, from the leased address,
/// which is then in `ciaddr` rather than an option).
pub fn request(xid: u32, mac: &[u8], lease: &Lease, renewing: bool) -> Vec<u8> {
    let mut m = base(xid, mac, MessageType::Request);
    if renewing {
        m.set_ciaddr(lease.addr);
    } else {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(lease.addr));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(lease.server));
    }
    encode(&m)
}

/// Reads a server's reply to transaction `xid`; `None` for anything else (another
/// transaction, a request, garbage).
pub fn read_reply(bytes: &[u8], xid: u32) -> Option<Answer> {
    let m = Message::decode(&mut Decoder::new(bytes)).ok()?;
    if m.opcode() != Opcode::BootReply || m.xid() != xid {
        return None;
    }
    let opts = m.opts();
    let kind = opts.msg_type()?;
    if kind == MessageType::Nak {
        return Some(Answer::Nak);
    }
    let prefix = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => u32::from(*mask).leading_ones() as u8,
        _ => 24,
    };
    let router = match opts.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => m.siaddr(),
    };
    let lease_secs = match opts.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        _ => 3600,
    };
    let lease = Lease {
        addr: m.yiaddr(),
        prefix,
        router,
        server,
        lease_secs,
    };
    match kind {
        MessageType::Offer if !lease.addr.is_unspecified() => Some(Answer::Offer(lease)),
        MessageType::Ack if !lease.addr.is_unspecified() => Some(Answer::Ack(lease)),
        _ => None,
    }
}

/// How long to wait for each answer, and how many times to ask.
const WAIT: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;

/// A UDP socket on port 68 bound to `dev`, allowed to broadcast.
fn socket(dev: &str) -> Result<tokio::net::UdpSocket, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| format!("socket: {e}"))?;
    s.set_reuse_address(true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    s.set_broadcast(true).map_err(|e| format!("SO_BROADCAST: {e}"))?;
    s.bind_device(Some(dev.as_bytes()))
        .map_err(|e| format!("binding to {dev}: {e}"))?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68).into())
        .map_err(|e| format!("binding UDP port 68: {e}"))?;
    s.set_nonblocking(true).map_err(|e| format!("non-blocking: {e}"))?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(|e| format!("socket: {e}"))
}

/// Sends `msg` to every DHCP server and waits for an answer to `xid` that `accept`
/// takes, asking up to [`TRIES`] times.
async fn exchange<T>(
    sock: &tokio::net::UdpSocket,
    msg: &[u8],
    xid: u32,
    what: &str,
    accept: impl Fn(Answer) -> Option<T>,
) -> Result<T, String> {
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut buf = vec![0u8; 1500];
    for _ in 0..TRIES {
        sock.send_to(msg, to)
            .await
            .map_err(|e| format!("sending the {what}: {e}"))?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Ok(r) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            let (n, _) = r.map_err(|e| format!("reading answers: {e}"))?;
            if let Some(t) = read_reply(&buf[..n], xid).and_then(&accept) {
                return Ok(t);
            }
        }
    }
    Err(format!(
        "no answer to the {what} from a DHCP server in {} s",
        WAIT.as_secs() * u64::from(TRIES)
    ))
}

fn xid() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_ne_bytes(b)
}

/// A lease for interface `dev` (hardware address `mac`).
pub async fn acquire(dev: &str, mac: &[u8]) -> Result<Lease, String> {
    let sock = socket(dev)?;
    let x = xid();
    let offer = exchange(&sock, &discover(x, mac), x, "DISCOVER", |a| match a {
        Answer::Offer(l) => Some(l),
        _ => None,
    })
    .await?;
    exchange(&sock, &request(x, mac, &offer, false), x, "REQUEST", |a| match a {
        Answer::Ack(l) => Some(Ok(l)),
        Answer::Nak => Some(Err(format!(
            "the server {} refused the address {}",
            offer.server, offer.addr
        ))),
        Answer::Offer(_) => None,
    })
    .await?
}

/// Keeps `lease` on `dev`: asks again at half of it, and retries every minute until it
/// runs out. Runs until the machine stops; says on the log what happens.
pub async fn renew(dev: String, mac: Vec<u8>, mut lease: Lease) {
    loop {
        tokio::time::sleep(Duration::from_secs(u64::from(lease.lease_secs / 2).max(30))).await;
        let mut left = Duration::from_secs(u64::from(lease.lease_secs / 2));
        loop {
            let renewed = async {
                let sock = socket(&dev)?;
                let x = xid();
                exchange(
                    &sock,
                    &request(x, &mac, &lease, true),
                    x,
                    "renewing REQUEST",
                    |a| match a {
                        Answer::Ack(l) => Some(Ok(l)),
                        Answer::Nak => Some(Err("the server refused to renew the lease".to_string())),
                        Answer::Offer(_) => None,
                    },
                )
                .await?
            }
            .await;
            match renewed {
                Ok(l) if l.addr == lease.addr => {
                    tracing::info!(%dev, addr = %l.addr, secs = l.lease_secs, "DHCP lease renewed");
                    lease = l;
                    break;
                }
                Ok(l) => {
                    tracing::warn!(%dev, old = %lease.addr, new = %l.addr, "the DHCP server renewed with another address; keeping the old one until it expires");
                    break;
                }
                Err(e) if left > Duration::from_secs(60) => {
                    tracing::warn!(%dev, "DHCP renewal failed: {e}; trying again in a minute");
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    left -= Duration::from_secs(60);
                }
                Err(e) => {
                    tracing::error!(%dev, addr = %lease.addr, "the DHCP lease ran out without renewal: {e}");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    /// A server's answer to transaction `xid`, as slirp (QEMU's user network) sends it.
    fn answer(xid: u32, kind: MessageType) -> Vec<u8> {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootReply)
            .set_xid(xid)
            .set_yiaddr(Ipv4Addr::new(10, 0, 2, 15))
            .set_chaddr(&MAC);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        m.opts_mut()
            .insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 2, 2)]));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(86400));
        encode(&m)
    }

    fn lease() -> Lease {
        Lease {
            addr: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            router: Some(Ipv4Addr::new(10, 0, 2, 2)),
            server: Ipv4Addr::new(10, 0, 2, 2),
            lease_secs: 86400,
        }
    }

    #[test]
    fn offers_and_acks_become_leases() {
        assert_eq!(
            read_reply(&answer(7, MessageType::Offer), 7),
            Some(Answer::Offer(lease()))
        );
        assert_eq!(read_reply(&answer(7, MessageType::Ack), 7), Some(Answer::Ack(lease())));
        assert_eq!(read_reply(&answer(7, MessageType::Nak), 7), Some(Answer::Nak));
        // Another transaction, our own request, garbage: not answers.
        assert_eq!(read_reply(&answer(8, MessageType::Offer), 7), None);
        assert_eq!(read_reply(&discover(7, &MAC), 7), None);
        assert_eq!(read_reply(b"\x02\x01garbage", 7), None);
    }

    #[test]
    fn requests_carry_what_the_server_needs() {
        let d = Message::decode(&mut Decoder::new(&discover(9, &MAC))).unwrap();
        assert_eq!((d.xid(), d.opts().msg_type()), (9, Some(MessageType::Discover)));
        assert!(d.flags().broadcast());
        assert_eq!(&d.chaddr()[..6], &MAC);
        let r = Message::decode(&mut Decoder::new(&request(9, &MAC, &lease(), false))).unwrap();
        assert_eq!(r.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(
            r.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 0, 2, 15)))
        );
        assert_eq!(
            r.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)))
        );
        let renew = Message::decode(&mut Decoder::new(&request(9, &MAC, &lease(), true))).unwrap();
        assert_eq!(renew.ciaddr(), Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(renew.opts().get(OptionCode::ServerIdentifier), None);
    }
}
