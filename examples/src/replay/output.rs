//! An output file written whole or not at all, and never over the input: dr-replay's `-o`.
//!
//! The frames go to a temporary file in the output's directory, renamed over the output
//! when the run succeeds; a run that fails removes it, so the output's name never holds a
//! partial file and an output from an earlier run stays as it was. An output that is the
//! input (the same path, or the same file through a symbolic or hard link) is refused
//! before anything is written. An existing output that is not a regular file (`/dev/null`,
//! a FIFO) is written directly: there is nothing to rename over.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An output being written; [`OutputFile::commit`] puts it in place, dropping it without
/// committing removes what was written.
#[derive(Debug)]
pub struct OutputFile {
    /// The temporary file and the file it replaces; `None` when writing in place.
    rename: Option<(PathBuf, PathBuf)>,
}

impl OutputFile {
    /// Checks `output` against the opened `input` (named `input_path`) and creates the file
    /// the frames are written to.
    ///
    /// # Errors
    ///
    /// A message naming `-o` and the path: the output is the input, is a directory, or its
    /// directory does not exist; or the operating system's error creating the file.
    pub fn create(output: &Path, input: &File, input_path: &Path) -> Result<(Self, File), String> {
        let shown = output.display();
        let input_meta = input.metadata().map_err(|e| format!("{}: {e}", input_path.display()))?;
        let same_path = match (output.canonicalize(), input_path.canonicalize()) {
            (Ok(out), Ok(inp)) => out == inp,
            _ => false,
        };
        let existing = std::fs::metadata(output).ok();
        let same_file = existing
            .as_ref()
            .is_some_and(|m| (m.dev(), m.ino()) == (input_meta.dev(), input_meta.ino()));
        if same_path || same_file {
            return Err(format!(
                "-o {shown} is the input ({}): writing it would destroy the capture; give another output file",
                input_path.display()
            ));
        }
        match &existing {
            Some(m) if m.is_dir() => {
                return Err(format!("-o {shown} is a directory: give a file name"));
            }
            Some(m) if !m.is_file() => {
                // A device or a FIFO: written as it is, nothing to rename over.
                let file = OpenOptions::new()
                    .write(true)
                    .open(output)
                    .map_err(|e| format!("-o {shown}: {e}"))?;
                return Ok((Self { rename: None }, file));
            }
            _ => {}
        }
        // The file to replace: where a symbolic link points, so the link stays.
        let target = match &existing {
            Some(_) => output.canonicalize().map_err(|e| format!("-o {shown}: {e}"))?,
            None => output.to_path_buf(),
        };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!("-o {shown}: {} is not a directory", dir.display()));
            }
            Err(_) => {
                return Err(format!(
                    "-o {shown}: the directory {} does not exist; create it (mkdir -p) or write the output elsewhere",
                    dir.display()
                ));
            }
        }
        let name = target.file_name().ok_or_else(|| format!("-o {shown}: give a file name"))?;
        let temp =
            dir.join(format!(".{}.dr-replay-{}.tmp", name.to_string_lossy(), std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| format!("-o {shown}: creating {}: {e}", temp.display()))?;
        let guard = Self { rename: Some((temp, target)) };
        if let (Some(m), Some((temp, _))) = (&existing, &guard.rename) {
            // The replacement keeps the permissions the output had.
            std::fs::set_permissions(temp, m.permissions())
                .map_err(|e| format!("-o {shown}: {e}"))?;
        }
        Ok((guard, file))
    }

    /// Puts the written file in place of the output.
    ///
    /// # Errors
    ///
    /// The operating system's error renaming it; the temporary file is then removed.
    pub fn commit(mut self) -> Result<(), String> {
        match self.rename.take() {
            None => Ok(()),
            Some((temp, target)) => std::fs::rename(&temp, &target).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                format!("-o {}: {e}", target.display())
            }),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some((temp, _)) = self.rename.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}
