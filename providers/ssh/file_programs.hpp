#pragma once
// The programs RemoteHost runs as root on a host for file operations, in Perl because perl-base
// is Essential on every Debian/Ubuntu (minbase included; Fcntl, Errno and IO::Handle are in it)
// while python3 is not there before Patroni is installed, and a shell cannot open a file with
// O_NOFOLLOW or O_EXCL, nor chown/chmod/fsync it by descriptor.
//
// Every path is walked from / one component at a time, each directory entered through a
// descriptor opened with O_NOFOLLOW (fchdir), so that nothing is looked up by path twice and a
// directory its owner swaps for a symbolic link midway is never entered. A symbolic link is
// followed only where it lies in a directory only root can change (root-owned, not group- or
// other-writable: /var/run -> /run); anywhere else its owner could swap it between our look and
// our use, so it is an error naming it. The programs take their values as arguments (after
// `--`), file content on stdin, and print one line on stderr when they fail (exit status 1).

#include <string>

namespace pgc::providers {

// write PATH OWNER GROUP MODE SIZE, content on stdin: a new temp file next to PATH (O_CREAT |
// O_EXCL | O_NOFOLLOW, 0600), its size checked against SIZE, fchown, fchmod, fsync, rename over
// PATH (a symbolic link at PATH is replaced, not followed), then the check that PATH is the file
// written, and an fsync of the directory. The temp file is removed on any failure.
const std::string& write_file_program();

// read PATH: the file's bytes on stdout; exit status 3 when it is absent (a missing file or
// directory on the way, or a dangling link that may be followed). Refuses what is not a regular
// file (a FIFO cannot block it: opened O_NONBLOCK), and a file with other hard links in a
// directory a non-root user can change.
const std::string& read_file_program();

// PATH...: for the host probe (reconciler/observe.cpp), one line per path, read as above:
// "file PATH 1 BASE64" or "file PATH 0" when it is absent or refused (write_file then replaces a
// refused link at PATH; one on the way to it stays an error there).
const std::string& probe_files_program();

// mkdir PATH OWNER GROUP MODE EXISTING: creates the missing directories of PATH (those above it
// root:root 0755), PATH itself with mkdir, then chowns and chmods it through its descriptor:
// only directories it created are ever re-owned. EXISTING "keep": an existing PATH is left as
// it is; "owned": it must already belong to OWNER (else an error, never a chown), and gets
// GROUP and MODE through its descriptor.
const std::string& make_directory_program();

}  // namespace pgc::providers
