//! Where the bridge finds its peers: a Zenoh configuration built from a file and/or endpoints.

use std::path::PathBuf;

use crate::BridgeError;

/// Zenoh's roles for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Talks to other peers directly (and to routers).
    #[default]
    Peer,
    /// Talks only through a router (`zenohd`) or a peer it connects to.
    Client,
}

/// How to open the bridge's Zenoh session.
///
/// ```
/// let opts = ndring_zenoh::SessionOptions::default()
///     .listen("tcp/127.0.0.1:7447")
///     .connect("tcp/10.0.0.2:7447");
/// let config = opts.to_config()?;
/// # Ok::<(), ndring_zenoh::BridgeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// A Zenoh configuration file (JSON5); the fields below override it.
    pub config_file: Option<PathBuf>,
    /// Peer or client (`None`: the file's, else peer).
    pub mode: Option<Mode>,
    /// Endpoints to connect to, e.g. `tcp/10.0.0.2:7447`.
    pub connect: Vec<String>,
    /// Endpoints to listen on, e.g. `tcp/0.0.0.0:7447`.
    pub listen: Vec<String>,
    /// Multicast scouting (`None`: the file's, else off: peers are named explicitly).
    pub multicast_scouting: Option<bool>,
    /// Zenoh's shared-memory transport to peers on the same host (`None`: the file's, else on
    /// when built with the `shm` feature).
    pub shared_memory: Option<bool>,
}

impl SessionOptions {
    /// Adds an endpoint to connect to.
    ///
    /// ```
    /// let o = ndring_zenoh::SessionOptions::default().connect("tcp/127.0.0.1:7447");
    /// assert_eq!(o.connect, ["tcp/127.0.0.1:7447"]);
    /// ```
    pub fn connect(mut self, endpoint: &str) -> Self {
        self.connect.push(endpoint.to_string());
        self
    }

    /// Adds an endpoint to listen on.
    ///
    /// ```
    /// let o = ndring_zenoh::SessionOptions::default().listen("tcp/127.0.0.1:7447");
    /// assert_eq!(o.listen, ["tcp/127.0.0.1:7447"]);
    /// ```
    pub fn listen(mut self, endpoint: &str) -> Self {
        self.listen.push(endpoint.to_string());
        self
    }

    /// The Zenoh configuration these options describe.
    ///
    /// ```
    /// let c = ndring_zenoh::SessionOptions::default().to_config()?;
    /// assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "false");
    /// # Ok::<(), ndring_zenoh::BridgeError>(())
    /// ```
    pub fn to_config(&self) -> Result<zenoh::Config, BridgeError> {
        let mut config = match &self.config_file {
            Some(path) => zenoh::Config::from_file(path)
                .map_err(|e| BridgeError::Zenoh(format!("config file {}: {e}", path.display())))?,
            None => zenoh::Config::default(),
        };
        let file = self.config_file.is_some();
        let mut set = |key: &str, value: String| {
            config
                .insert_json5(key, &value)
                .map_err(|e| BridgeError::Zenoh(format!("config {key} = {value}: {e}")))
        };
        match self.mode {
            Some(Mode::Peer) => set("mode", "\"peer\"".into())?,
            Some(Mode::Client) => set("mode", "\"client\"".into())?,
            None if !file => set("mode", "\"peer\"".into())?,
            None => {}
        }
        if !self.connect.is_empty() {
            set("connect/endpoints", json_list(&self.connect))?;
        }
        if !self.listen.is_empty() {
            set("listen/endpoints", json_list(&self.listen))?;
        }
        match self.multicast_scouting {
            Some(on) => set("scouting/multicast/enabled", on.to_string())?,
            None if !file => set("scouting/multicast/enabled", "false".into())?,
            None => {}
        }
        #[cfg(feature = "shm")]
        match self.shared_memory {
            Some(on) => set("transport/shared_memory/enabled", on.to_string())?,
            None if !file => set("transport/shared_memory/enabled", "true".into())?,
            None => {}
        }
        Ok(config)
    }

    /// Opens a session with these options.
    ///
    /// ```
    /// // A peer listening on a port of the loopback interface that the OS picks.
    /// let session = ndring_zenoh::SessionOptions::default().listen("tcp/127.0.0.1:0").open()?;
    /// # Ok::<(), ndring_zenoh::BridgeError>(())
    /// ```
    pub fn open(&self) -> Result<zenoh::Session, BridgeError> {
        use zenoh::Wait;
        zenoh::open(self.to_config()?)
            .wait()
            .map_err(BridgeError::zenoh)
    }
}

fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(","))
}
