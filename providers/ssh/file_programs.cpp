#include "providers/ssh/file_programs.hpp"

namespace pgc::providers {
namespace {

// What the three programs share: failing, walking a path, following a link only where safe.
constexpr const char* k_common = R"PL(
use strict; use warnings;
use Fcntl qw(O_RDONLY O_WRONLY O_CREAT O_EXCL O_NOFOLLOW O_DIRECTORY O_NONBLOCK S_ISDIR S_ISREG S_ISLNK);
use Errno qw(ENOENT EEXIST);
use IO::Handle;
# Failing: one line; each program turns it into that line on stderr and exit status 1.
sub fail { die join('', @_), "\n" }
sub run_main { my ($main) = @_; eval { $main->(); 1 } or do { print STDERR $@; exit 1 }; exit 0 }
# The components of a path; "." ones mean nothing.
sub parts { return grep { $_ ne '' && $_ ne '.' } split m{/}, $_[0] }
# True when only root can change the entries of the directory we are in: root owns it and
# neither its group nor others may write it. A symbolic link is followed only in such a
# directory; elsewhere its owner could swap it between our look and our use.
sub trusted { my @s = stat('.') or fail("stat: $!"); return $s[4] == 0 && ($s[2] & 022) == 0 }
sub owner_here { my @s = stat('.'); my $n = getpwuid($s[4]); return defined $n ? "user $n" : "uid $s[4]" }
my $hops = 0;
# Follows the symbolic link $name in the current directory: its target's components go before
# @$todo; an absolute target starts again at /.
sub follow {
  my ($name, $todo, $at) = @_;
  fail("$at/$name is a symbolic link in a directory ", owner_here(), " can change; refusing to follow it") unless trusted();
  fail("$at/$name: too many levels of symbolic links") if ++$hops > 40;
  my $target = readlink($name);
  fail("reading the link $at/$name: $!") unless defined $target;
  if ($target =~ m{^/}) { chdir('/') or fail("chdir /: $!"); $_[2] = ''; }
  unshift @$todo, parts($target);
}
# Opens directory $name in the current directory without following a symbolic link.
sub open_dir { my $d; return sysopen($d, $_[0], O_RDONLY | O_DIRECTORY | O_NOFOLLOW) ? $d : undef }
# Makes directory $name here, owned by root with $mode (nothing else can own it yet: it is ours),
# and returns it opened; an entry put in its place meanwhile is an error.
sub make_dir {
  my ($name, $mode, $at) = @_;
  mkdir($name, 0700) or fail("creating $at/$name: $!");
  my $d = open_dir($name) or fail("opening $at/$name: $!");
  my @s = stat($d);
  fail("$at/$name was replaced while it was created") unless $s[4] == 0;
  chmod($mode, $d) or fail("chmod $at/$name: $!");
  return $d;
}
# Walks from the current directory along @$todo until one component is left, entering each
# directory through a descriptor (fchdir), so that nothing is looked up by path twice. Missing
# directories are made (root, 0755) when $create, else the answer is undef. Returns the last
# component; the current directory is then the one that holds it. $_[2] tracks the path walked.
sub walk {
  my ($todo, $create) = @_;
  $_[2] //= '';
  while (@$todo > 1) {
    my $c = shift @$todo;
    my $at = $_[2];
    if (my $d = open_dir($c)) { chdir($d) or fail("chdir $at/$c: $!"); }
    else {
      my @l = lstat($c);
      if (!@l) {
        fail("$at/$c: $!") unless $! == ENOENT;
        return undef unless $create;
        my $d = make_dir($c, 0755, $at);
        chdir($d) or fail("chdir $at/$c: $!");
      } elsif (S_ISLNK($l[2])) { follow($c, $todo, $_[2]); next; }
      else { fail("$at/$c is not a directory") }
    }
    $_[2] = $c eq '..' ? ($at =~ s{/[^/]*\z}{}r) : "$at/$c";
  }
  return $todo->[0];
}
sub uid_of { my $u = $_[0] =~ /\A\d+\z/ ? $_[0] : getpwnam($_[0]); fail("no such user '$_[0]'") unless defined $u; return $u }
sub gid_of { my $g = $_[0] =~ /\A\d+\z/ ? $_[0] : getgrnam($_[0]); fail("no such group '$_[0]'") unless defined $g; return $g }
# Starts a walk at /: the components of the absolute $path, which must name something below /.
sub start {
  my ($path) = @_;
  $hops = 0;
  fail("$path: the path must be absolute") unless $path =~ m{\A/};
  chdir('/') or fail("chdir /: $!");
  my @t = parts($path);
  fail("$path must name a file") if !@t || $path =~ m{/\.?\.?\z};
  return @t;
}
sub sync_here { my $d = open_dir('.') or fail("opening a directory: $!"); $d->sync or fail("fsync of a directory: $!") }
# The file at $path (undef when absent: a missing file or directory on the way, or a dangling
# link that may be followed). Refuses what is not a regular file (a FIFO cannot block it: it is
# opened O_NONBLOCK), and a file with other hard links in a directory a non-root user can change.
sub safe_read {
  my ($path) = @_;
  my @todo = start($path);
  my $at = '';
  my $fh;
  while (1) {
    my $name = walk(\@todo, 0, $at);
    return undef unless defined $name;
    last if sysopen($fh, $name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    my @l = lstat($name);
    if (!@l) { return undef if $! == ENOENT; fail("$path: $!") }
    fail("$path: cannot open $at/$name: $!") unless S_ISLNK($l[2]);
    @todo = ();
    follow($name, \@todo, $at);
    fail("$path is a directory") unless @todo;
  }
  my @s = stat($fh);
  fail("$path is a directory") if S_ISDIR($s[2]);
  fail("$path is not a regular file") unless S_ISREG($s[2]);
  fail("$path has other hard links and lies in a directory ", owner_here(), " can change; refusing to read it")
    if $s[3] > 1 && !trusted();
  my $content = '';
  while (1) {
    my $n = sysread($fh, $content, 1 << 20, length $content);
    fail("reading $path: $!") unless defined $n;
    return $content if $n == 0;
  }
}
# Base64 without MIME::Base64 (not in perl-base): uuencode's groups, translated.
sub base64 {
  my ($bytes) = @_;
  my $out = '';
  for (my $i = 0; $i < length $bytes; $i += 45) { my $u = pack('u', substr($bytes, $i, 45)); $out .= substr($u, 1, -1) }
  $out =~ tr{` -_}{AA-Za-z0-9+/};
  my $pad = (3 - length($bytes) % 3) % 3;
  substr($out, -$pad) = '=' x $pad if $pad;
  return $out;
}
)PL";

}  // namespace

const std::string& write_file_program() {
  static const std::string program = std::string(k_common) + R"PL(
# The temp file goes on any failure, a signal (timeout(1) sends TERM) included.
my ($tmp, $done);
END { unlink($tmp) if defined $tmp && !$done }
$SIG{$_} = sub { exit 1 } for qw(HUP INT TERM PIPE);
run_main(sub {
  my ($path, $owner, $group, $mode, $size) = @ARGV;
  my ($uid, $gid) = (uid_of($owner), gid_of($group));
  my @todo = start($path);
  my $at = '';
  my $name = walk(\@todo, 0, $at);
  (my $dir = $path) =~ s{/[^/]*\z}{};
  fail("parent directory $dir does not exist") unless defined $name;
  my @l = lstat($name);
  fail("$path is a directory") if @l && S_ISDIR($l[2]);
  my $fh;
  my @abc = ('a'..'z', 'A'..'Z', '0'..'9');
  for (1 .. 100) {
    my $try = ".$name.pgc-tmp." . join('', map { $abc[rand @abc] } 1 .. 10);
    if (sysopen($fh, $try, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600)) { $tmp = $try; last }
    fail("creating a temporary file in $dir: $!") unless $! == EEXIST;
  }
  fail("creating a temporary file in $dir: no free name") unless defined $tmp;
  binmode STDIN;
  my $got = 0;
  while (1) {
    my $n = sysread(STDIN, my $buf, 1 << 20);
    fail("reading the content: $!") unless defined $n;
    last if $n == 0;
    for (my $off = 0; $off < $n;) {
      my $w = syswrite($fh, $buf, $n - $off, $off);
      fail("writing $path: $!") unless defined $w;
      $off += $w;
    }
    $got += $n;
  }
  my @s = stat($fh);
  fail("received $s[7] of $size bytes") unless $got == $size && $s[7] == $size;
  chown($uid, $gid, $fh) or fail("chown $path: $!");
  chmod(oct($mode), $fh) or fail("chmod $path: $!");
  $fh->sync or fail("fsync $path: $!");
  rename($tmp, $name) or fail("renaming into $path: $!");
  $done = 1;
  my @now = lstat($name);
  fail("$path was replaced while it was written") unless @now && $now[0] == $s[0] && $now[1] == $s[1];
  sync_here();
});
)PL";
  return program;
}

const std::string& read_file_program() {
  static const std::string program = std::string(k_common) + R"PL(
run_main(sub {
  my $content = safe_read($ARGV[0]);
  exit 3 unless defined $content;
  binmode STDOUT;
  print $content or fail("writing $ARGV[0] out: $!");
});
)PL";
  return program;
}

const std::string& probe_files_program() {
  static const std::string program = std::string(k_common) + R"PL(
# One line per path: "file PATH 1 BASE64" or "file PATH 0" (absent, or not to be read: a link
# another user could swap is not followed, and write_file replaces it).
for my $p (@ARGV) {
  my $content = eval { safe_read($p) };
  print defined $content ? "file $p 1 " . base64($content) . "\n" : "file $p 0\n";
}
)PL";
  return program;
}

const std::string& make_directory_program() {
  static const std::string program = std::string(k_common) + R"PL(
# $existing: "keep" leaves an existing directory as it is; "owned" requires it to be owned by
# $owner already (it is never re-owned) and sets its group and mode through its descriptor.
run_main(sub {
  my ($path, $owner, $group, $mode, $existing) = @ARGV;
  my ($uid, $gid) = (uid_of($owner), gid_of($group));
  my @todo = start($path);
  my $at = '';
  while (1) {
    my $name = walk(\@todo, 1, $at);
    if (my $d = open_dir($name)) {
      exit 0 if $existing eq 'keep';
      my @s = stat($d);
      if ($s[4] != $uid) {
        my $n = getpwuid($s[4]);
        fail("$path exists and belongs to ", (defined $n ? "user $n" : "uid $s[4]"), ", not $owner; ",
             "refusing to change the owner of a directory pgconverge did not create");
      }
      chown(-1, $gid, $d) or fail("chgrp $path: $!");
      chmod(oct($mode), $d) or fail("chmod $path: $!");
      exit 0;
    }
    my @l = lstat($name);
    if (@l && S_ISLNK($l[2])) { @todo = (); follow($name, \@todo, $at); fail("$path is /") unless @todo; next; }
    fail("$path exists and is not a directory") if @l;
    fail("$path: $!") unless $! == ENOENT;
    my $d = make_dir($name, oct($mode), $at);
    chown($uid, $gid, $d) or fail("chown $path: $!");
    chmod(oct($mode), $d) or fail("chmod $path: $!");
    $d->sync;
    sync_here();
    exit 0;
  }
});
)PL";
  return program;
}

}  // namespace pgc::providers
