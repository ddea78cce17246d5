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
    /// The socket file's device and inode, so that only our own file is removed.
    file: (u64, u64),
}

/// A file's device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl ControlSocket {
    /// Listens on `path`, mode 0600. A socket file left there by a director that is gone is
    /// replaced; one a running director answers on is never taken over, nor is any other
    /// file.
    ///
    /// # Errors
    ///
    /// A message naming the path and what failed.
    pub fn bind(path: &Path) -> Result<Self, String> {
        use std::os::unix::fs::FileTypeExt;
        let fail = |e: std::io::Error| format!("control socket {}: {e}", path.display());
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "control socket {}: the path exists and is not a socket; remove it or give \
                     another --control",
                    path.display()
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "control socket {}: a running dr-director answers on it; stop that one or \
                     give this one another --control",
                    path.display()
                ));
            }
            // Nobody listens: a director that is gone left it.
            std::fs::remove_file(path).map_err(fail)?;
        }
        let listener = UnixListener::bind(path).map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let file = identity(path).ok_or_else(|| fail(std::io::Error::other("it vanished")))?;
        Ok(Self { listener, path: path.to_path_buf(), file })
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
    /// Removes the socket file if it is still the one this director made.
    fn drop(&mut self) {
        if identity(&self.path) == Some(self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
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

    #[test]
    fn a_live_socket_is_never_taken_over_and_a_stale_one_is_replaced() {
        let dir = std::env::temp_dir().join(format!("dr-control-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let first = ControlSocket::bind(&path).unwrap();
        let err = ControlSocket::bind(&path).unwrap_err();
        assert!(err.contains("a running dr-director answers on it"), "{err}");
        assert!(path.exists(), "the refused one removed nothing");
        drop(first);
        // A socket file nobody listens on (a director that was killed) is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let second = ControlSocket::bind(&path).unwrap();
        // A file that is not a socket is never removed.
        let other = dir.join("not-a-socket");
        std::fs::write(&other, b"keep").unwrap();
        let err = ControlSocket::bind(&other).unwrap_err();
        assert!(err.contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read(&other).unwrap(), b"keep");
        // A socket file replaced under a director is not removed by it.
        std::fs::remove_file(&path).unwrap();
        let replacement = UnixListener::bind(&path).unwrap();
        drop(second);
        assert!(path.exists(), "the other director's socket stays");
        drop(replacement);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
