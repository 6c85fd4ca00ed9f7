// icemu-check: judge one scenario run against the reference models.
//
//   icemu-check [options] [ARTIFACTS_DIR]
// Exit status: 0 every invariant passed or does not apply, 1 an invariant failed,
// 2 usage or input error.
#include "icemu/checker/checker.hpp"
#include "icemu/checker/device_summary.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

void usage(std::FILE* f) {
    std::fprintf(
        f,
        "usage: icemu-check [options] [ARTIFACTS_DIR]\n"
        "  ARTIFACTS_DIR        one scenario's directory from icemu-run --keep (run.json,\n"
        "                       <ctrl>.events.jsonl, *.img)\n"
        "  --run FILE           run.json (default ARTIFACTS_DIR/run.json)\n"
        "  --scenario FILE      scenario JSON (default: ARTIFACTS_DIR/scenario.json, else\n"
        "                       guest-tests/scenarios/<dir name>.json)\n"
        "  --log CTRL=FILE      an event log (repeatable; overrides the directory's)\n"
        "  --image DISK=FILE    a raw image of scenario disk DISK (repeatable)\n"
        "  --kernel RELEASE     the kernel rules of RELEASE, e.g. 6.1.192 or 7.3.4 (default: the\n"
        "                       guest's release; one outside the rule table is an error)\n"
        "  --with-fixes         the kernel carries guest-tests/kernel/fixes (bug rules off)\n"
        "  --no-media           skip the medium comparison of invariant 7\n"
        "  --json FILE          also write the verdicts as JSON ('-' = stdout, text to stderr)\n"
        "  --quiet              print only failures and the summary\n"
        "  --device-only        no scenario or run.json: summarise and judge the --log files\n"
        "                       alone (what ./icemu shell prints after a session)\n"
        "  --expect-evicted     with --device-only: nothing is mounted any more, so every\n"
        "                       keyslot must be empty at the end of each log\n"
        "exit: 0 pass, 1 an invariant failed, 2 usage/input error\n");
}

std::pair<std::string, std::string> split_eq(const std::string& s) {
    const auto p = s.find('=');
    if (p == std::string::npos) {
        throw std::invalid_argument("expected NAME=FILE, got '" + s + "'");
    }
    return {s.substr(0, p), s.substr(p + 1)};
}

} // namespace

int main(int argc, char** argv) {
    using namespace icemu::checker;
    std::string dir, run_path, scenario_path, json_path;
    std::vector<std::pair<std::string, std::string>> logs, images;
    Options opt;
    bool quiet = false;
    bool device_only = false;
    std::string kernel_release;
    bool with_fixes = false;
    DeviceSummaryOptions dopt;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto val = [&]() -> std::string {
                if (i + 1 >= argc) {
                    throw std::invalid_argument(a + " needs a value");
                }
                return argv[++i];
            };
            if (a == "--run") {
                run_path = val();
            } else if (a == "--scenario") {
                scenario_path = val();
            } else if (a == "--log") {
                logs.push_back(split_eq(val()));
            } else if (a == "--image") {
                images.push_back(split_eq(val()));
            } else if (a == "--kernel") {
                kernel_release = val(); // checked by rules_for below
            } else if (a == "--with-fixes") {
                with_fixes = true;
            } else if (a == "--no-media") {
                opt.check_media = false;
            } else if (a == "--json") {
                json_path = val();
            } else if (a == "--quiet") {
                quiet = true;
            } else if (a == "--device-only") {
                device_only = true;
            } else if (a == "--expect-evicted") {
                dopt.expect_evicted = true;
            } else if (a == "-h" || a == "--help") {
                usage(stdout);
                return 0;
            } else if (!a.empty() && a[0] == '-') {
                throw std::invalid_argument("unknown option " + a);
            } else if (dir.empty()) {
                dir = a;
            } else {
                throw std::invalid_argument("more than one artifacts directory");
            }
        }
        if (device_only && logs.empty()) {
            throw std::invalid_argument("--device-only needs at least one --log CTRL=FILE");
        }
        if (dopt.expect_evicted && !device_only) {
            throw std::invalid_argument("--expect-evicted needs --device-only");
        }
        if (!device_only && dir.empty() && run_path.empty()) {
            throw std::invalid_argument("give an artifacts directory or --run");
        }
        if (!kernel_release.empty()) {
            opt.kernel = icemu::models::kernel::rules_for(kernel_release, with_fixes);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "icemu-check: %s\n", e.what());
        usage(stderr);
        return 2;
    }

    if (device_only) {
        try {
            const auto result = device_summary(logs, dopt, std::cout);
            if (!json_path.empty()) {
                std::ofstream(json_path) << result.dump(1) << "\n";
            }
            for (const auto& v : result["verdicts"]) {
                if (v["status"] == "fail") {
                    return 1;
                }
            }
            return 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "icemu-check: %s\n", e.what());
            return 2;
        }
    }

    Inputs in;
    try {
        if (!dir.empty()) {
            in = load_artifacts(dir, scenario_path, ICEMU_CHECK_SCENARIO_DIR);
        }
        if (!run_path.empty()) {
            in.run = read_json_file(run_path);
        }
        if (dir.empty() && !scenario_path.empty()) {
            in.scenario = read_json_file(scenario_path);
        }
        for (const auto& [ctrl, path] : logs) {
            std::ifstream f(path, std::ios::binary);
            if (!f) {
                throw std::runtime_error("cannot open " + path);
            }
            const std::string text((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
            in.logs[ctrl] = parse_log_text(ctrl, text, path);
        }
        for (const auto& [disk, path] : images) {
            in.images[disk] = path;
        }
        if (with_fixes && !opt.kernel) {
            opt.kernel = icemu::models::kernel::rules_for(
                in.run.at("hello").at("release").get<std::string>(), true);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "icemu-check: %s\n", e.what());
        return 2;
    }

    std::vector<Verdict> v;
    try {
        v = check(in, opt);
    } catch (const std::invalid_argument& e) { // run.json names an op outside the vocabulary
        std::fprintf(stderr, "icemu-check: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "icemu-check: internal error: %s\n", e.what());
        return 2;
    }
    std::FILE* text_out = json_path == "-" ? stderr : stdout;
    for (const auto& n : in.notes) {
        std::fprintf(text_out, "# %s\n", n.c_str());
    }
    if (quiet) {
        std::vector<Verdict> f;
        for (const auto& x : v) {
            if (x.status == Status::fail) {
                f.push_back(x);
            }
        }
        std::string t = format_text(f);
        // keep the overall summary of all verdicts
        const auto p = t.rfind("icemu-check:");
        std::fputs(t.substr(0, p).c_str(), text_out);
        std::string all = format_text(v);
        std::fputs(all.substr(all.rfind("icemu-check:")).c_str(), text_out);
    } else {
        std::fputs(format_text(v).c_str(), text_out);
    }
    if (!json_path.empty()) {
        json j = to_json(v);
        j["notes"] = in.notes;
        if (json_path == "-") {
            std::cout << j.dump(2) << "\n";
        } else {
            std::ofstream(json_path) << j.dump(2) << "\n";
        }
    }
    return any_failed(v) ? 1 : 0;
}
