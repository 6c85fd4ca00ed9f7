// Loading one scenario run's artifacts (docs/conformance.md "Artifacts").
#include "icemu/checker/checker.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace icemu::checker {

namespace fs = std::filesystem;
namespace ev = models::events;

LogInput parse_log_text(std::string ctrl, std::string_view text, std::string path) {
    LogInput out;
    out.ctrl = std::move(ctrl);
    out.path = std::move(path);
    if (!text.empty() && text.back() != '\n') {
        const auto nl = text.rfind('\n');
        text = nl == std::string_view::npos ? std::string_view() : text.substr(0, nl + 1);
        out.torn_tail = true;
    }
    try {
        out.events = ev::parse_log(text);
    } catch (const ev::LogError& e) {
        out.events.clear();
        out.error = (out.path.empty() ? out.ctrl + " log" : out.path) + ": " + e.what();
        out.error_line = e.line();
        return out;
    }
    out.offsets.reserve(out.events.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        out.offsets.push_back(pos);
        const auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            break;
        }
        pos = nl + 1;
    }
    out.offsets.resize(out.events.size());
    return out;
}

json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return json::parse(ss.str(), nullptr, true, /*ignore_comments=*/true);
    } catch (const json::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
}

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

Inputs load_artifacts(const std::string& dir, const std::string& scenario_path,
                      const std::string& scenario_dir) {
    Inputs in;
    const fs::path d(dir);
    in.run = read_json_file((d / "run.json").string());
    std::string sp = scenario_path;
    if (sp.empty() && fs::exists(d / "scenario.json")) {
        sp = (d / "scenario.json").string();
    }
    if (sp.empty() && !scenario_dir.empty()) {
        const std::string name = fs::absolute(d).lexically_normal().filename().string();
        const fs::path guess = fs::path(scenario_dir) / (name + ".json");
        if (!name.empty() && fs::exists(guess)) {
            sp = guess.string();
        }
    }
    if (!sp.empty()) {
        in.scenario = read_json_file(sp);
        in.notes.push_back("scenario: " + sp);
    } else {
        in.notes.push_back("scenario: not found (run.json does not name it); pass --scenario");
    }
    // Event logs: <ctrl>.events.jsonl (guest-tests/runner/cmdline.cpp event_log_path).
    for (const auto& e : fs::directory_iterator(d)) {
        const std::string f = e.path().filename().string();
        const std::string suffix = ".events.jsonl";
        if (f.size() > suffix.size() && f.ends_with(suffix)) {
            const std::string ctrl = f.substr(0, f.size() - suffix.size());
            in.logs[ctrl] = parse_log_text(ctrl, read_text(e.path().string()), e.path().string());
        }
    }
    // Images: <ctrl>-lu<N>-<name>.img and virtio-<name>.img (cmdline.cpp lu_image/virtio_image).
    if (in.scenario.is_object()) {
        for (const auto& c : in.scenario.value("controllers", json::array())) {
            // an eMMC controller's one disk is named on the controller (runner scenario.cpp)
            const json lus = c.value("type", "ufs") == "emmc"
                                 ? json::array({{{"name", c.value("name", "")}, {"lun", 0}}})
                                 : c.value("lus", json::array());
            for (const auto& lu : lus) {
                const std::string name = lu.value("name", "");
                const fs::path p = d / (c.value("id", "") + "-lu" +
                                        std::to_string(lu.value("lun", 0)) + "-" + name + ".img");
                if (fs::exists(p)) {
                    in.images[name] = p.string();
                }
            }
        }
        for (const auto& v : in.scenario.value("virtio_disks", json::array())) {
            const fs::path p = d / ("virtio-" + v.value("name", "") + ".img");
            if (fs::exists(p)) {
                in.images[v.value("name", "")] = p.string();
            }
        }
    }
    return in;
}

} // namespace icemu::checker
