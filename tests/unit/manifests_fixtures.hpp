#pragma once
// Temp-dir fixture and helpers for the manifests unit tests: each test writes its own files.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "manifests/loader.hpp"
#include "tests/support/temp_dir.hpp"

namespace pgc::testing {

// A temp dir of manifests: write files, load the directory, read the diagnostics as printed.
class ManifestDir : public test::TempDir {
 public:
  // Loads the whole directory; diagnostics keep file names relative to it (see printed()).
  [[nodiscard]] manifests::LoadResult load() const { return manifests::load_directory(path()); }

  // Every diagnostic as printed, with this directory's prefix removed wherever it appears
  // (also in "first declared at …"): "c.yaml:3:9: …".
  [[nodiscard]] std::vector<std::string> printed(const manifests::LoadResult& result) const {
    const std::string prefix = path().generic_string() + "/";
    std::vector<std::string> out;
    for (const auto& d : result.diagnostics) {
      std::string line = d.str();
      for (auto pos = line.find(prefix); pos != std::string::npos; pos = line.find(prefix, pos))
        line.erase(pos, prefix.size());
      out.push_back(line);
    }
    return out;
  }
};

// A lab every validation test starts from: one etcd, three hosts, the three referenced configs.
inline const char* k_valid_lab = R"(apiVersion: pgconverge.io/v1
kind: EtcdCluster
metadata:
  name: etcd
spec:
  endpoints: ["10.0.0.2:2379"]
---
apiVersion: pgconverge.io/v1
kind: Host
metadata:
  name: pg-1
  labels:
    pgconverge.io/cluster: c
spec:
  address: 10.0.0.11
---
apiVersion: pgconverge.io/v1
kind: Host
metadata:
  name: pg-2
  labels:
    pgconverge.io/cluster: c
spec:
  address: 10.0.0.12
  ssh:
    port: 2222
    user: admin
---
apiVersion: stackgres.io/v1
kind: SGPostgresConfig
metadata:
  name: pgconfig
spec:
  postgresVersion: "15"
  postgresql.conf:
    max_connections: "100"
    shared_buffers: 256MB
---
apiVersion: stackgres.io/v1
kind: SGInstanceProfile
metadata:
  name: size-s
spec:
  cpu: "1"
  memory: 2Gi
---
apiVersion: stackgres.io/v1
kind: SGPoolingConfig
metadata:
  name: poolconfig
spec:
  pgBouncer:
    pgbouncer.ini:
      pgbouncer:
        max_client_conn: "200"
)";

}  // namespace pgc::testing
