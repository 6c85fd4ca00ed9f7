// kernel_rules: the Linux behaviours icemu's models, checker and runner depend on, as ONE
// table of rules keyed by kernel version ranges. Each rule cites the kernel source it comes
// from (upstream path, and the commit that introduced the behaviour where it is known). The
// table is read in the three Debian trees the matrix builds (6.1.192, 6.12.117, 7.3.4); see
// docs/conformance.md "Kernel matrix".
//
// A release outside every supported series (misspelt, or a series nobody read, e.g. 6.6) is an
// error, never a silent default: rules_for() throws std::invalid_argument.
#pragma once

#include <compare>
#include <string>
#include <string_view>
#include <vector>

namespace icemu::models::kernel {

struct Version {
    unsigned major = 0, minor = 0, patch = 0;
    friend auto operator<=>(const Version&, const Version&) = default;
    std::string str() const;
};

/// A kernel release as uname(2) or `make kernelversion` give it: "6.12.117", "7.3.4-icemu",
/// "6.1.0-28-amd64", "7.3" (patch 0). Anything else throws std::invalid_argument.
Version parse_version(std::string_view release);

/// [from, to): from inclusive, to exclusive. kForever as `to`: no upper bound.
struct Range {
    Version from, to;
    bool contains(const Version& v) const { return from <= v && v < to; }
};
inline constexpr Version kForever{~0u, 0, 0};

/// behaviour: what a kernel does (a fact the models predict from); bug: a defect the suite
/// detects, with a fix in guest-tests/kernel/fixes/<series>/ (`fix` names the patch).
enum class Kind { behaviour, bug };

struct Rule {
    std::string_view name;
    Kind kind;
    std::string_view summary;
    std::vector<Range> holds; ///< where it holds (empty: nowhere)
    std::string_view source;  ///< upstream path(s) and the commit that introduced it
    std::string_view fix;     ///< bug: the fix's patch file names, blank-separated, in
                              ///< guest-tests/kernel/fixes/<series>/
};

/// Every rule, in a stable order (docs/conformance.md lists the same table).
const std::vector<Rule>& rule_table();
/// The rule named `name`; throws std::invalid_argument for an unknown name.
const Rule& rule(std::string_view name);

/// A kernel series the table was read for: releases in `range` get rules; all others throw.
struct Series {
    std::string_view name;     ///< what --kernel-series takes ("6.1", "6.12", "7")
    Range range;               ///< releases the rules were checked against
    std::string_view verified; ///< the Debian source package the rules were read in
};
const std::vector<Series>& supported_series();

/// The rules of one kernel release. With fixes (a kernel built with --with-fixes), every bug
/// rule that has a fix is off: the bug's expected failures must then pass.
class Rules {
public:
    /// Throws std::invalid_argument when `release` does not parse or is in no supported series.
    static Rules for_release(std::string_view release, bool with_fixes = false);

    /// Whether rule `name` holds for this kernel; throws std::invalid_argument for unknown names.
    bool holds(std::string_view name) const;
    /// A condition: rule names, each optionally negated with "!", joined by "&&" and "||"
    /// ("&&" binds tighter; no parentheses), e.g. "a && !b || c". Throws like holds(), and for
    /// bad syntax.
    bool condition(std::string_view cond) const;

    const Version& version() const { return version_; }
    std::string_view series() const { return series_; }
    bool with_fixes() const { return with_fixes_; }

    /// "7.3.4" or "7.3.4 with fixes", for messages.
    std::string describe() const;

private:
    Version version_;
    std::string_view series_;
    bool with_fixes_ = false;
};

/// Shorthand for Rules::for_release.
inline Rules rules_for(std::string_view release, bool with_fixes = false) {
    return Rules::for_release(release, with_fixes);
}

/// Throws std::invalid_argument unless `cond` is a well-formed condition over known rules.
void validate_condition(std::string_view cond);

} // namespace icemu::models::kernel
