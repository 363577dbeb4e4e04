#pragma once
// What may be shown: every text pgconverge prints (plan, status, history, errors) that holds a
// value observed on a host (Patroni's config, GET /config, pg_settings, command output) passes
// through here first. Secrets pgconverge keeps are replaced by <redacted> wherever they appear,
// and so are credentials of any origin in the forms PostgreSQL and URLs spell them:
// password=... (libpq conninfo, quoted or not, any key ending in "password"), "password": ...
// (JSON/YAML) and scheme://user:password@host.

#include <string>
#include <string_view>

#include "reconciler/plan.hpp"
#include "reconciler/secrets.hpp"

namespace pgc::reconciler {

// text with every secret value and every credential form above replaced by <redacted>.
std::string redact_text(std::string_view text, const ClusterSecrets* secrets = nullptr);

// The same over every display string of a plan (subjects, before/after, reasons, fields, errors,
// warnings); the typed steps (steps.hpp) are the executor's and are never printed.
void redact_plan(Plan& plan, const std::map<std::string, ClusterSecrets>& secrets);

}  // namespace pgc::reconciler
