// What simdjson (Debian's libsimdjson-dev 3.0.1) takes to parse the benchmark's records, beside
// the daemon's own JSON tape (issue #19 asked to measure it before choosing a decoder). It reads
// the values `cloudwaste-stream bench-decode --write-values FILE` wrote and times, per record:
//   dom:      the whole document parsed and validated into simdjson's tape (what JSONTape.parse does),
//   walk:     the same, then every value visited (strings unescaped, numbers converted),
//   ondemand: the on-demand API visiting every value (validation only as far as it is visited,
//             trailing content not checked).
// Duplicate names, the depth and number rules of SPEC §2 are not checked here (the daemon's tape
// checks them). Build and run (docs/performance.md, "Thirteenth pass"):
//   g++ -O3 -march=native -o .build/simdjson-reference scripts/tools/simdjson-reference.cpp -lsimdjson
//   .build/release/cloudwaste-stream bench-decode --records 100000 --write-values .build/values.bin
//   .build/simdjson-reference .build/values.bin 5
#include <simdjson.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using namespace simdjson;

static uint64_t sink = 0;

static void walk(dom::element e) {
    switch (e.type()) {
    case dom::element_type::ARRAY:
        for (dom::element c : dom::array(e)) walk(c);
        break;
    case dom::element_type::OBJECT:
        for (dom::key_value_pair f : dom::object(e)) { sink += f.key.size(); walk(f.value); }
        break;
    case dom::element_type::STRING: sink += std::string_view(e).size(); break;
    case dom::element_type::INT64: sink += uint64_t(int64_t(e)); break;
    case dom::element_type::UINT64: sink += uint64_t(e); break;
    case dom::element_type::DOUBLE: sink += uint64_t(double(e)); break;
    case dom::element_type::BOOL: sink += bool(e); break;
    case dom::element_type::NULL_VALUE: break;
    }
}

static bool visit(ondemand::value v) {
    ondemand::json_type t;
    if (v.type().get(t)) return false;
    switch (t) {
    case ondemand::json_type::array:
        for (auto c : v.get_array()) { ondemand::value x; if (c.get(x) || !visit(x)) return false; }
        return true;
    case ondemand::json_type::object:
        for (auto f : v.get_object()) {
            std::string_view k; ondemand::value x;
            if (f.unescaped_key().get(k) || f.value().get(x)) return false;
            sink += k.size();
            if (!visit(x)) return false;
        }
        return true;
    case ondemand::json_type::string: { std::string_view s; if (v.get_string().get(s)) return false; sink += s.size(); return true; }
    case ondemand::json_type::number: { double d; if (v.get_double().get(d)) return false; sink += uint64_t(d); return true; }
    case ondemand::json_type::boolean: { bool b; if (v.get_bool().get(b)) return false; sink += b; return true; }
    case ondemand::json_type::null: return !v.is_null().error() ;
    }
    return false;
}

int main(int argc, char **argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: %s VALUES_FILE [PASSES]\n", argv[0]); return 2; }
    int passes = argc > 2 ? std::atoi(argv[2]) : 3;
    std::ifstream in(argv[1], std::ios::binary);
    std::vector<padded_string> values;
    uint64_t bytes = 0;
    for (uint32_t n; in.read(reinterpret_cast<char *>(&n), 4);) {
        std::string s(n, '\0');
        if (!in.read(s.data(), n)) { std::fprintf(stderr, "%s: a value cut short\n", argv[1]); return 1; }
        bytes += n;
        values.emplace_back(s);
    }
    if (values.empty()) { std::fprintf(stderr, "no values in %s\n", argv[1]); return 1; }
    dom::parser dp;
    ondemand::parser op;
    auto time = [&](const char *name, auto &&body) {
        size_t rejected = 0;
        for (auto &v : values) rejected += body(v);  // warm-up
        auto start = std::chrono::steady_clock::now();
        for (int p = 0; p < passes; p++)
            for (auto &v : values) body(v);
        double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-8s %.3f us per record (%zu of %zu rejected)\n", name, us / passes / values.size(), rejected, values.size());
    };
    std::printf("simdjson %s, %zu records, %.0f bytes each on average\n",
                simdjson::get_active_implementation()->name().c_str(), values.size(), double(bytes) / values.size());
    time("dom", [&](padded_string &v) { dom::element e; return dp.parse(v).get(e) ? 1 : 0; });
    time("walk", [&](padded_string &v) { dom::element e; if (dp.parse(v).get(e)) return 1; walk(e); return 0; });
    time("ondemand", [&](padded_string &v) {
        ondemand::document d;
        if (op.iterate(v).get(d)) return 1;
        ondemand::value root;
        if (d.get_value().get(root) || !visit(root)) return 1;
        return 0;  // 3.0.1's on-demand documents cannot tell trailing content apart
    });
    return sink == 42;
}
