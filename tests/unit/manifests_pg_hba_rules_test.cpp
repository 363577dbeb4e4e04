// The pg_hba lines an SGCluster may declare (manifests/pg_hba_rules.cpp): rules of a known type,
// methods that need a password pgconverge holds, nothing that reads a file of the host, nothing
// around the cluster's TLS.
#include <catch2/catch.hpp>

#include "manifests/pg_hba_rules.hpp"

using pgc::manifests::declared_pg_hba;
using pgc::manifests::refuse_pg_hba_line;

namespace {
std::string why(const std::string& line, bool tls = true) { return refuse_pg_hba_line(line, tls).value_or("accepted"); }
}  // namespace

TEST_CASE("pg_hba rules: what a cluster's own lines may say", "[manifests][pg_hba]") {
  for (const char* line : {"hostssl all app 10.0.0.0/8 scram-sha-256", "hostssl app,reports +readers 192.168.1.0/24 md5",
                           "local all all peer", "local sameuser all scram-sha-256",
                           "host all all 127.0.0.1/32 md5", "host all all ::1/128 scram-sha-256",
                           "host all postgres samehost scram-sha-256", "hostssl all all 10.0.0.7 255.255.255.255 password",
                           "hostssl all all db-clients.example.com scram-sha-256 clientcert=verify-full",
                           "hostssl \"my db\" \"@odd name\" 10.0.0.0/8 scram-sha-256", "hostssl all bad 0.0.0.0/0 reject",
                           "hostssl\tall\tall\tfd00::/8\tscram-sha-256"}) {
    INFO(line);
    CHECK(why(line) == "accepted");
  }
  // TLS off: plain host lines for the network are what the cluster has.
  CHECK(why("host all all 10.0.0.0/8 scram-sha-256", false) == "accepted");
  CHECK(why("hostnossl all all 10.0.0.0/8 scram-sha-256", false) == "accepted");
}

TEST_CASE("pg_hba rules: a login without a password pgconverge holds is refused (COPY ... TO PROGRAM)",
          "[manifests][pg_hba]") {
  for (const char* method : {"trust", "ident", "cert"}) {
    std::string line = std::string("hostssl all all 10.0.0.0/8 ") + method;
    INFO(line);
    CHECK(why(line) == std::string("method ") + method +
                           " logs in without a password pgconverge holds: a superuser's connection could run programs "
                           "on the host (COPY ... TO PROGRAM); use scram-sha-256");
  }
  CHECK(why("local all all trust").starts_with("method trust logs in without a password"));
  CHECK(why("hostssl all all 10.0.0.0/8 pam pamservice=sshd") ==
        "method pam needs configuration of the host pgconverge does not manage (Kerberos, LDAP, RADIUS, PAM, BSD auth)");
  CHECK(why("hostssl all all 10.0.0.0/8 ldap ldapserver=evil").starts_with("method ldap needs configuration"));
  CHECK(why("hostssl all all 10.0.0.0/8 peer") == "method peer is only for local lines");
  CHECK(why("hostssl all all 10.0.0.0/8 sha1") == "unknown authentication method \"sha1\"");
}

TEST_CASE("pg_hba rules: nothing that reads a file of the host", "[manifests][pg_hba]") {
  CHECK(why("include /etc/shadow") == "\"include\" reads a file of the host; only rules are accepted");
  CHECK(why("include_dir /root") == "\"include_dir\" reads a file of the host; only rules are accepted");
  CHECK(why("include_if_exists /etc/ssh/ssh_host_ed25519_key").starts_with("\"include_if_exists\" reads a file"));
  CHECK(why("hostssl all @/etc/passwd 10.0.0.0/8 scram-sha-256") ==
        "\"@/etc/passwd\" (@file) reads a file of the host; list the names");
  CHECK(why("hostssl @dbs all 10.0.0.0/8 scram-sha-256").ends_with("(@file) reads a file of the host; list the names"));
  CHECK(why("hostssl all all 10.0.0.0/8 scram-sha-256 map=admins").starts_with("option \"map\" is not supported"));
}

TEST_CASE("pg_hba rules: nothing around the cluster's TLS", "[manifests][pg_hba]") {
  CHECK(why("host all all 10.0.0.0/8 scram-sha-256") ==
        "admits connections from 10.0.0.0/8 without TLS while the cluster's TLS is on (spec.postgres.ssl); write hostssl");
  CHECK(why("hostnossl replication replicator 0.0.0.0/0 scram-sha-256").starts_with("admits connections from 0.0.0.0/0"));
  CHECK(why("host all all samenet md5").starts_with("admits connections from samenet without TLS"));
  CHECK(why("host all all 127.0.0.0/4 md5").starts_with("admits connections"));  // 127/4 is not loopback only
  CHECK(why("hostgssenc all all 10.0.0.0/8 scram-sha-256") == "hostgssenc: GSSAPI is not set up by pgconverge");
  CHECK(why("hostssl all all 10.0.0.0/8 md5 clientcert=no") == "clientcert must be verify-ca or verify-full");
  CHECK(why("host all all 127.0.0.1/32 md5 clientcert=verify-ca") == "option clientcert is only for hostssl lines");
}

TEST_CASE("pg_hba rules: the shape of a line", "[manifests][pg_hba]") {
  CHECK(why("") == "is empty");
  CHECK(why("   ") == "is empty");
  CHECK(why("hostssl all all 10.0.0.0/8 scram-sha-256 # clients") == "holds a comment ('#'): write the rule alone");
  CHECK(why("hostssl \"all all 10.0.0.0/8 md5") == "has an unclosed double quote");
  CHECK(why("hostssl all all 10.0.0.0/8 md5\r") == "holds a control character");
  CHECK(why("hots all all 10.0.0.0/8 md5") == "unknown connection type \"hots\" (local, host, hostssl, hostnossl)");
  CHECK(why("hostssl all all") == "has no address");
  CHECK(why("hostssl all all 10.0.0.0/8") == "has no authentication method");
  CHECK(why("local all") == "has no authentication method");
  CHECK(why("hostssl all all 10.0.0.0/33 md5") ==
        "address \"10.0.0.0/33\" is not a CIDR, a host name or all/samehost/samenet");
  CHECK(why("hostssl all all 10.0.0.7 md5") == "address \"10.0.0.7\" needs a /prefix or a mask");
}

TEST_CASE("pg_hba rules: the declared lines, in order", "[manifests][pg_hba]") {
  auto config = nlohmann::json::parse(R"({"ttl": 30, "postgresql": {"pg_hba": ["a", "b"], "parameters": {}}})");
  CHECK(declared_pg_hba(config) == std::vector<std::string>{"a", "b"});
  CHECK(declared_pg_hba(nlohmann::json::parse(R"({"postgresql": {"pg_hba": ["a", 1]}})")).empty());
  CHECK(declared_pg_hba(nlohmann::json::parse(R"({"postgresql": {"pg_hba": "a"}})")).empty());
  CHECK(declared_pg_hba(nlohmann::json::parse(R"({"ttl": 30})")).empty());
  CHECK(declared_pg_hba(nlohmann::json()).empty());
}
