import Foundation

/// Small SVG charts for the status page, drawn on the server (no script, no external files):
/// axes with round tick values, labels, and a `<title>` on every bar and point, which browsers
/// show on hover.
enum SVGChart {
    struct Series {
        var name: String
        var color: String
        var values: [Double]
    }

    /// Grouped bars: one group per label, one bar per series.
    static func bars(labels: [String], series: [Series], unit: String, id: String) -> String {
        let top = niceMax(series.flatMap(\.values).max() ?? 0)
        let groupWidth = 22 * series.count + 18
        let left = 70, bottom = 30, height = 220, plot = height - bottom - 20
        let width = left + groupWidth * max(1, labels.count) + 20
        var svg = svgOpen(id: id, width: width, height: height, label: "\(series.map(\.name).joined(separator: " and ")) per month")
        svg += yAxis(top: top, left: left, plotTop: 20, plotHeight: plot, width: width, unit: unit)
        for (i, label) in labels.enumerated() {
            let x0 = left + 10 + i * groupWidth
            for (k, s) in series.enumerated() where i < s.values.count {
                let v = s.values[i]
                let h = top > 0 ? Int(Double(plot) * v / top) : 0
                let x = x0 + k * 22
                svg += "<rect class=\"bar\" x=\"\(x)\" y=\"\(20 + plot - h)\" width=\"20\" height=\"\(h)\" fill=\"\(s.color)\">"
                svg += "<title>\(escape(label)) \(escape(s.name)): \(format(v)) \(escape(unit))</title></rect>"
                if h > 14 {
                    svg += "<text x=\"\(x + 10)\" y=\"\(20 + plot - h + 11)\" font-size=\"8\" text-anchor=\"middle\" fill=\"#fff\">\(short(v))</text>"
                }
            }
            svg += "<text x=\"\(x0 + groupWidth / 2 - 9)\" y=\"\(height - 12)\" font-size=\"11\" text-anchor=\"middle\">\(escape(label))</text>"
        }
        return svg + "</svg>" + legend(series)
    }

    /// A line over time: `points` are (seconds before now, value), the x axis the last `span` seconds.
    static func line(points: [(ago: Double, value: Double)], span: Double, name: String, color: String, unit: String, id: String) -> String {
        let top = niceMax(points.map(\.value).max() ?? 0)
        let left = 70, height = 160, plot = 110, plotWidth = 600
        let width = left + plotWidth + 20
        var svg = svgOpen(id: id, width: width, height: height, label: "\(name) over the last \(Int(span / 60)) minutes")
        svg += yAxis(top: top, left: left, plotTop: 15, plotHeight: plot, width: width, unit: unit)
        for minutes in stride(from: Int(span / 60), through: 0, by: -10) {
            let x = left + Int(Double(plotWidth) * (1 - Double(minutes * 60) / span))
            svg += "<text x=\"\(x)\" y=\"\(15 + plot + 16)\" font-size=\"10\" text-anchor=\"middle\">\(minutes == 0 ? "now" : "−\(minutes) min")</text>"
        }
        let coordinates = points.map { p -> (Int, Int) in
            (left + Int(Double(plotWidth) * (1 - min(span, p.ago) / span)), 15 + plot - (top > 0 ? Int(Double(plot) * p.value / top) : 0))
        }
        if coordinates.count > 1 {
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coordinates.map { "\($0.0),\($0.1)" }.joined(separator: " "))\"/>"
        }
        for (p, c) in zip(points, coordinates) {
            svg += "<circle class=\"point\" cx=\"\(c.0)\" cy=\"\(c.1)\" r=\"2.5\" fill=\"\(color)\"><title>\(Int(p.ago)) s ago: \(format(p.value)) \(escape(unit))</title></circle>"
        }
        if points.isEmpty {
            svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(15 + plot / 2)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#888\">no samples yet</text>"
        }
        return svg + "</svg>"
    }

    private static func svgOpen(id: String, width: Int, height: Int, label: String) -> String {
        "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(escape(label))\" font-family=\"sans-serif\">"
    }

    private static func yAxis(top: Double, left: Int, plotTop: Int, plotHeight: Int, width: Int, unit: String) -> String {
        var out = "<line x1=\"\(left)\" y1=\"\(plotTop)\" x2=\"\(left)\" y2=\"\(plotTop + plotHeight)\" stroke=\"#444\"/>"
        out += "<line x1=\"\(left)\" y1=\"\(plotTop + plotHeight)\" x2=\"\(width - 10)\" y2=\"\(plotTop + plotHeight)\" stroke=\"#444\"/>"
        for i in 0...4 {
            let v = top * Double(i) / 4
            let y = plotTop + plotHeight - plotHeight * i / 4
            out += "<line x1=\"\(left - 4)\" y1=\"\(y)\" x2=\"\(width - 10)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
            out += "<text class=\"tick\" x=\"\(left - 6)\" y=\"\(y + 4)\" font-size=\"10\" text-anchor=\"end\">\(short(v))</text>"
        }
        out += "<text x=\"12\" y=\"\(plotTop + plotHeight / 2)\" font-size=\"10\" transform=\"rotate(-90 12 \(plotTop + plotHeight / 2))\" text-anchor=\"middle\">\(escape(unit))</text>"
        return out
    }

    private static func legend(_ series: [Series]) -> String {
        "<p class=\"legend\">" + series.map { "<span style=\"color:\($0.color)\">■</span> \(escape($0.name))" }.joined(separator: " · ") + "</p>"
    }

    /// The smallest 1, 2 or 5 × 10^n at or above `v`.
    static func niceMax(_ v: Double) -> Double {
        guard v > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(v)))
        for step in [1.0, 2, 5, 10] where step * magnitude >= v { return step * magnitude }
        return 10 * magnitude
    }

    static func short(_ v: Double) -> String {
        switch abs(v) {
        case 1_000_000...: String(format: "%.1fM", v / 1_000_000)
        case 10_000...: String(format: "%.0fk", v / 1000)
        case 1000...: String(format: "%.1fk", v / 1000)
        default: v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
        }
    }

    static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.2f", v) }
}

func escape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "&": out += "&amp;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
