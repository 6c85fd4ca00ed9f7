// icemu-check: the invariants over one scenario run. See checker.hpp.
//
// Pipeline (run.hpp): (1) facts.cpp walks run.json's steps in order, one handler per guest op,
// feeding the dm_passthrough model and collecting the guest's facts; (2) files.cpp turns every
// file with enough facts into a FileModel (fscrypt key and DUN function, extents mapped through
// the dm tables onto (controller, LUN, byte range)); (3) replay.cpp replays each controller's
// event log through ufshci::LogReplay and keyslots::TrafficChecker, attributing every io to the
// files it touches; (4) verdicts.cpp judges each invariant of the table from what was collected.
#include "run.hpp"

#include <stdexcept>

namespace icemu::checker {

std::vector<Verdict> check(const Inputs& in, const Options& opt) {
    namespace dm = models::dm;
    const std::string rel = detail::str(detail::at(in.run, "hello"), "release");
    if (!opt.kernel && rel.empty()) {
        throw std::invalid_argument("run.json has no hello.release (did the guest say hello?): "
                                    "no kernel rules to judge the run by");
    }
    const dm::KernelRules kv = opt.kernel ? *opt.kernel : models::kernel::rules_for(rel);
    const detail::Facts facts = detail::gather_facts(in, kv);
    detail::Models models = detail::build_models(facts);
    const detail::Results res = detail::replay_logs(facts, models);
    const detail::Run run{in, opt, facts, models, res};
    std::vector<Verdict> out;
    for (const Invariant& inv : invariants()) {
        Verdict v = inv.judge(run);
        v.invariant = inv.number;
        v.name = inv.name;
        v.title = inv.title;
        out.push_back(std::move(v));
    }
    return out;
}

} // namespace icemu::checker
