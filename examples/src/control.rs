//! dr-director's control socket: a Unix socket, readable and writable by its owner only,
//! that takes one ipvsadm command line per connection (see [`crate::ipvsadm`]) and answers
//! `OK` or `ERR` on the first line, then the command's output or the error.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket dr-director listens on unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/dr-director.sock";

/// The listening side, polled by the director's loop without blocking it.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Listens on `path` (a stale socket file there is replaced), mode 0600.
    ///
    /// # Errors
    ///
    /// A message naming the path and what failed.
    pub fn bind(path: &Path) -> Result<Self, String> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        Ok(Self { listener, path: path.to_path_buf() })
    }

    /// Serves every request waiting now with `handle`, which turns a command line into its
    /// output or an error. Returns how many were served.
    pub fn serve(&self, mut handle: impl FnMut(&str) -> Result<String, String>) -> usize {
        let mut served = 0;
        while let Ok((stream, _)) = self.listener.accept() {
            served += 1;
            // A client that does not send its line within a second is dropped.
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut line = String::new();
            let mut reader = BufReader::new(&stream).take(4096);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let reply = match handle(line.trim()) {
                Ok(output) => format!("OK\n{output}"),
                Err(message) => format!("ERR\n{message}\n"),
            };
            let _ = (&stream).write_all(reply.as_bytes());
        }
        served
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The client side (`dr-director ctl`): sends one command line, returns the output.
///
/// # Errors
///
/// The director's error message, or why the socket could not be used.
pub fn request(path: &Path, command: &str) -> Result<String, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "control socket {}: {e} (is dr-director running, and are you root?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    writeln!(stream, "{command}").map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    let mut body = String::new();
    reader.read_to_string(&mut body).map_err(|e| e.to_string())?;
    match status.trim() {
        "OK" => Ok(body),
        "ERR" => Err(body.trim_end().to_string()),
        other => Err(format!("unexpected answer from the director: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_command_per_connection_owner_only() {
        let dir = std::env::temp_dir().join(format!("dr-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let client = std::thread::spawn({
            let path = path.clone();
            move || (request(&path, "-L -n"), request(&path, "-X"))
        });
        let mut served = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while served < 2 && std::time::Instant::now() < deadline {
            served += socket.serve(|line| {
                if line == "-L -n" { Ok("listing\n".into()) } else { Err("no".into()) }
            });
            std::thread::sleep(Duration::from_millis(10));
        }
        let (ok, err) = client.join().unwrap();
        assert_eq!(ok.unwrap(), "listing\n");
        assert_eq!(err.unwrap_err(), "no");
        drop(socket);
        assert!(!path.exists(), "the socket file goes with the director");
        let mut nothing = String::new();
        let _ = std::fs::File::open(&path).map(|mut f| f.read_to_string(&mut nothing));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
