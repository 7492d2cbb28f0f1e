//! Who a process attached to a ring is: its [`Role`], and the [`PeerInfo`] that lists it. Plain
//! values, below the errors that name them and the peer table that stores them.

use std::fmt;

/// What a process attached to a ring does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Role {
    /// Claims and publishes slots of a queue ring.
    Producer = 1,
    /// Receives and releases slots of a queue ring.
    Consumer = 2,
    /// Publishes frames to a broadcast ring.
    Writer = 3,
    /// Follows a broadcast ring.
    Subscriber = 4,
    /// Reads and writes a shared array.
    Sharer = 5,
    /// Serves requests of a request/reply segment.
    Server = 6,
    /// Sends requests to a request/reply segment and receives their replies.
    Client = 7,
}

impl Role {
    pub(crate) fn from_u8(r: u8) -> Option<Role> {
        Some(match r {
            1 => Role::Producer,
            2 => Role::Consumer,
            3 => Role::Writer,
            4 => Role::Subscriber,
            5 => Role::Sharer,
            6 => Role::Server,
            7 => Role::Client,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Writer => "writer",
            Role::Subscriber => "subscriber",
            Role::Sharer => "sharer",
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// One attached process, as listed by `peers()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its role.
    pub role: Role,
    /// Its process id.
    pub pid: u32,
    /// Whether it is alive (pid exists, is no zombie, and has the recorded start time).
    pub alive: bool,
}
