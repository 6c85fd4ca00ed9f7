#include "fstests_report.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "icemu/models/events.hpp"

namespace icemu::fstests {

namespace ev = icemu::models::events;
using nlohmann::json;

namespace {

std::string xml_unescape(const std::string& s) {
    static const std::pair<const char*, char> ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        bool done = false;
        if (s[i] == '&')
            for (const auto& [e, c] : ents) {
                std::string_view ev(e);
                if (s.compare(i, ev.size(), ev) == 0) {
                    out += c;
                    i += ev.size();
                    done = true;
                    break;
                }
            }
        if (!done)
            out += s[i++];
    }
    return out;
}

// The value of attribute `name` in the tag text `tag` ("" when absent).
std::string attr(const std::string& tag, const std::string& name) {
    std::string key = " " + name + "=\"";
    auto p = tag.find(key);
    if (p == std::string::npos) {
        key = "\t" + name + "=\"";
        p = tag.find(key);
    }
    if (p == std::string::npos)
        return "";
    p += key.size();
    auto q = tag.find('"', p);
    return q == std::string::npos ? "" : xml_unescape(tag.substr(p, q - p));
}

bool starts_with(const std::string& s, const std::string& p) {
    return s.compare(0, p.size(), p) == 0;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            // XML 1.0 allows no control characters but tab, newline, carriage return.
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
                out += '?';
            else
                out += c;
        }
    }
    return out;
}

std::vector<TestResult> parse_xunit(const std::string& xml) {
    if (xml.find("<testsuite") == std::string::npos)
        throw std::runtime_error("not an xunit report (no <testsuite>)");
    std::vector<TestResult> out;
    std::size_t pos = 0;
    while ((pos = xml.find("<testcase", pos)) != std::string::npos) {
        auto tag_end = xml.find('>', pos);
        if (tag_end == std::string::npos)
            throw std::runtime_error("unterminated <testcase> tag");
        std::string tag = xml.substr(pos, tag_end - pos + 1);
        bool empty_elem = tag.size() >= 2 && tag[tag.size() - 2] == '/';
        std::size_t body_end = empty_elem ? tag_end : xml.find("</testcase>", tag_end);
        if (body_end == std::string::npos)
            throw std::runtime_error("<testcase> without </testcase>");
        std::string body = empty_elem ? "" : xml.substr(tag_end + 1, body_end - tag_end - 1);
        TestResult r;
        r.name = attr(tag, "name");
        try {
            r.seconds = std::stod(attr(tag, "time"));
        } catch (const std::exception&) {
            r.seconds = 0;
        }
        // Only the child elements' own tags count: system-out may quote anything in CDATA.
        auto child = [&](const std::string& name) -> std::string {
            auto p = body.find("<" + name);
            auto cdata = body.find("<![CDATA[");
            if (p == std::string::npos || (cdata != std::string::npos && cdata < p))
                return "";
            auto e = body.find('>', p);
            return body.substr(p, e == std::string::npos ? std::string::npos : e - p + 1);
        };
        std::string failure = child("failure"), error = child("error"), skipped = child("skipped");
        if (!failure.empty() || !error.empty()) {
            r.status = "fail";
            r.message = attr(failure.empty() ? error : failure, "message");
        } else if (!skipped.empty()) {
            r.status = "notrun";
            r.message = trim(attr(skipped, "message"));
        } else {
            r.status = "pass";
        }
        if (r.name.empty())
            throw std::runtime_error("a <testcase> without a name");
        out.push_back(r);
        pos = body_end;
    }
    return out;
}

std::vector<Mark> parse_marks(const std::string& jsonl) {
    std::vector<Mark> out;
    std::istringstream in(jsonl);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty())
            continue;
        json j = json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("mark") || !j["mark"].is_string() ||
            !j.contains("logs") || !j["logs"].is_object())
            throw std::runtime_error("marks line " + std::to_string(n) +
                                     ": not a {\"mark\", \"logs\"} object");
        Mark m;
        m.text = j["mark"].get<std::string>();
        m.t = j.value("t", 0.0);
        for (const auto& [k, v] : j["logs"].items())
            m.logs[k] = v.get<std::uint64_t>();
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<Window> test_windows(const std::vector<Mark>& marks) {
    static const std::string prefix = "run xfstest ";
    std::vector<Window> out;
    for (std::size_t i = 0; i < marks.size(); ++i) {
        if (!starts_with(marks[i].text, prefix))
            continue;
        Window w;
        w.test = trim(marks[i].text.substr(prefix.size()));
        w.t0 = marks[i].t;
        w.begin = marks[i].logs;
        if (i + 1 < marks.size()) {
            w.t1 = marks[i + 1].t;
            w.end = marks[i + 1].logs;
        } else {
            // No mark after it: the guest stopped inside the test. Open-ended.
            w.t1 = w.t0;
            for (const auto& [k, v] : w.begin)
                w.end[k] = UINT64_MAX;
        }
        out.push_back(std::move(w));
    }
    return out;
}

std::map<std::string, KernelLog> split_kernel_log(const std::string& kmsg) {
    std::map<std::string, KernelLog> out;
    std::istringstream in(kmsg);
    std::string line, current;
    static const std::string run = "run fstests ";
    auto mode_of = [](const std::string& msg, std::size_t at) {
        // "fscrypt: AES-256-XTS using blk-crypto (native)": the word(s) before " using".
        auto start = msg.find("fscrypt: ");
        start = start == std::string::npos ? 0 : start + 9;
        return msg.substr(start, at > start ? at - start : 0);
    };
    while (std::getline(in, line)) {
        std::string msg = line;
        // /dev/kmsg records: "prio,seq,usec,flags;message" (continuation lines start with ' ').
        auto semi = line.find(';');
        if (semi != std::string::npos && line.find(',') < semi && !line.empty() &&
            std::isdigit(static_cast<unsigned char>(line[0])))
            msg = line.substr(semi + 1);
        else if (starts_with(line, "[")) { // dmesg's "[  12.345678] message"
            auto close = line.find("] ");
            if (close != std::string::npos)
                msg = line.substr(close + 2);
        }
        auto r = msg.find(run);
        if (r != std::string::npos) {
            auto name_start = r + run.size();
            auto name_end = msg.find(' ', name_start);
            current = msg.substr(name_start, name_end == std::string::npos ? std::string::npos
                                                                           : name_end - name_start);
        }
        if (current.empty())
            continue;
        KernelLog& k = out[current];
        k.lines.push_back(msg);
        if (msg.find("fscrypt: ") == std::string::npos)
            continue;
        if (auto p = msg.find(" using blk-crypto (native)"); p != std::string::npos)
            k.native.push_back(mode_of(msg, p));
        else if (auto p2 = msg.find(" using blk-crypto-fallback"); p2 != std::string::npos)
            k.fallback.push_back(mode_of(msg, p2));
        else if (auto p3 = msg.find(" using implementation "); p3 != std::string::npos)
            k.software.push_back(mode_of(msg, p3));
    }
    return out;
}

DeviceCounts count_events(const std::string& slice) {
    DeviceCounts c;
    std::size_t pos = 0, n = 0;
    while (pos < slice.size()) {
        auto nl = slice.find('\n', pos);
        std::string_view line(slice.data() + pos,
                              (nl == std::string::npos ? slice.size() : nl) - pos);
        pos = nl == std::string::npos ? slice.size() : nl + 1;
        ++n;
        if (line.empty())
            continue;
        c.add(ev::parse_event(line, n));
    }
    return c;
}

std::string crypto_path(const KernelLog& k, const std::map<std::string, DeviceCounts>& dev) {
    std::uint64_t ce = 0;
    for (const auto& [ctrl, c] : dev)
        ce += c.ce_ios();
    bool native = ce > 0 || !k.native.empty();
    bool fallback = !k.fallback.empty();
    if (native && fallback)
        return "native+fallback";
    if (native)
        return "native";
    if (fallback)
        return "fallback";
    if (!k.software.empty())
        return "software";
    return "-";
}

void merge(Row& row) {
    row.status = row.fstests.status;
    row.reason = row.fstests.message;
    if (!row.has_window && row.verdicts.empty())
        row.verdicts.push_back({"device", "not-applicable",
                                "no test boundary in the device logs (the test did not start)"});
    std::string failed;
    for (const auto& v : row.verdicts)
        if (v.status == "fail")
            failed += (failed.empty() ? "" : "; ") + v.name + ": " + v.reason;
    if (failed.empty())
        return;
    if (row.status == "fail")
        row.reason += (row.reason.empty() ? "" : "; ") + std::string("device: ") + failed;
    else
        row.reason = "fstests: " + row.status +
                     (row.reason.empty() ? "" : " (" + row.reason + ")") + "; device: " + failed;
    row.status = "fail";
}

namespace {

std::string verdict_word(const Row& r) {
    bool any = false;
    for (const auto& v : r.verdicts) {
        if (v.status == "fail")
            return "FAIL";
        any = any || v.status == "pass";
    }
    return any ? "ok" : "n/a";
}

std::string device_summary(const Row& r) {
    DeviceCounts t;
    for (const auto& [ctrl, c] : r.device) {
        t.programs += c.programs;
        t.evicts += c.evicts;
        t.ce_reads += c.ce_reads;
        t.ce_writes += c.ce_writes;
        t.refused += c.refused;
    }
    char buf[128];
    std::snprintf(
        buf, sizeof buf, "%llu/%llu/%llu/%llu", static_cast<unsigned long long>(t.programs),
        static_cast<unsigned long long>(t.evicts), static_cast<unsigned long long>(t.ce_writes),
        static_cast<unsigned long long>(t.ce_reads));
    return buf;
}

} // namespace

std::string table(const std::vector<Row>& rows) {
    std::ostringstream o;
    o << "| test | result | time (s) | crypto path | device: programs/evicts/CE writes/CE reads "
         "| device verdict | reason |\n";
    o << "|---|---|---|---|---|---|---|\n";
    for (const auto& r : rows) {
        std::string reason = r.reason;
        std::replace(reason.begin(), reason.end(), '\n', ' ');
        std::replace(reason.begin(), reason.end(), '|', '/');
        o << "| " << r.fstests.name << " | " << r.status << " | " << r.fstests.seconds << " | "
          << r.path << " | " << (r.has_window ? device_summary(r) : "-") << " | " << verdict_word(r)
          << " | " << reason << " |\n";
    }
    return o.str();
}

std::string junit(const std::vector<Row>& rows, const std::string& suite, double seconds) {
    unsigned failures = 0, skipped = 0;
    for (const auto& r : rows) {
        failures += r.status == "fail";
        skipped += r.status == "notrun";
    }
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
      << "  <testsuite name=\"" << xml_escape(suite) << "\" tests=\"" << rows.size()
      << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\" time=\"" << seconds
      << "\">\n";
    for (const auto& r : rows) {
        o << "    <testcase classname=\"" << xml_escape(suite) << "\" name=\""
          << xml_escape(r.fstests.name) << "\" time=\"" << r.fstests.seconds << "\">\n";
        if (r.status == "fail")
            o << "      <failure message=\"" << xml_escape(r.reason) << "\"/>\n";
        else if (r.status == "notrun")
            o << "      <skipped message=\"" << xml_escape(r.reason) << "\"/>\n";
        std::ostringstream out;
        out << "crypto path: " << r.path << "\n";
        for (const auto& [ctrl, c] : r.device)
            out << ctrl << ": " << c.programs << " key programs (" << c.program_errors
                << " refused), " << c.evicts << " evicts, " << c.ce_writes << " crypto writes, "
                << c.ce_reads << " crypto reads (" << c.refused << " refused), " << c.plain_ios
                << " I/Os without crypto\n";
        for (const auto& v : r.verdicts)
            out << "device verdict " << v.name << ": " << v.status << ": " << v.reason << "\n";
        o << "      <system-out>" << xml_escape(out.str()) << "</system-out>\n";
        o << "    </testcase>\n";
    }
    o << "  </testsuite>\n</testsuites>\n";
    return o.str();
}

} // namespace icemu::fstests
