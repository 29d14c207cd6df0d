//! The drawing of a traced run: one self-contained XHTML page with an inline SVG — no script
//! or font from outside. A lane per CPU holds its operations and, inside them, the kernel
//! routines it ran; below them, a row per cache line location (CPU, colour, set) that held a
//! line of the violating page, with its fills, stores, write-backs, flushes, purges and
//! speculative fills; a TLB row per CPU (inserts and purges of the page's translations); a
//! row of PTE changes. The violating read is highlighted. Every element of an event carries a
//! `<title>` (shown on hover) with its details, and the class `ev`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use vipt_emu::addr::{PAGE_SIZE, SpaceId, VirtAddr};
use vipt_emu::pte::Pte;
use vipt_emu::trace::{Insn, TraceEvent, What};

use crate::account::{OpSpan, RoutineSpan, op_spans, routine_spans};
use crate::oracle::{PageLoc, ViolationKind};
use crate::scenario::Outcome;

/// What the page is about.
pub struct PageInfo<'a> {
    /// The page's title.
    pub title: &'a str,
    /// Lines of text above the drawing (the account).
    pub account: &'a [String],
    /// The machine's line size in bytes.
    pub line_bytes: u64,
    /// The machine's sets per cache.
    pub sets: usize,
}

/// The trace events the page draws, in trace order: those on the lines of the page of the
/// first violation (or, for a violation about a frame, of that frame), the TLB inserts of
/// that page, the purges and nullified flushes of the addresses that translated it, and the
/// changes of PTEs that mapped it.
pub fn drawn_events(o: &Outcome, line_bytes: u64) -> Vec<&TraceEvent> {
    let Some(trace) = &o.trace else { return Vec::new() };
    let page_lines = PAGE_SIZE / line_bytes;
    let Some(pfn) = focus_pfn(o, line_bytes) else { return Vec::new() };
    let on_page = |tag: u64| tag / page_lines == pfn;
    // The addresses that translated the page, by the TLB or a PTE.
    let mut vas: BTreeSet<(SpaceId, VirtAddr)> = BTreeSet::new();
    for e in &trace.events {
        match e.what {
            What::TlbInsert { space, va, pfn: p, .. } if p.raw() as u64 == pfn => {
                vas.insert((space, va));
            }
            What::PteSet { space, va, old, new } if maps(old, pfn) || maps(new, pfn) => {
                vas.insert((space, va));
            }
            What::Flush { space, va, tag, .. } if on_page(tag) => {
                vas.insert((space, va.page_base()));
            }
            _ => {}
        }
    }
    trace
        .events
        .iter()
        .filter(|e| match e.what {
            What::Fill { tag, .. }
            | What::Evict { tag, .. }
            | What::WriteBack { tag, .. }
            | What::Store { tag, .. }
            | What::StoreLine { tag, .. }
            | What::Invalidate { tag, .. }
            | What::Flush { tag, .. } => on_page(tag),
            What::Nullified { space, va, .. } => vas.contains(&(space, va.page_base())),
            What::Purge { space, va, .. } => vas.contains(&(space, va.page_base())),
            What::PurgeSpace { space } => vas.iter().any(|(s, _)| *s == space),
            What::PurgeAll { .. } => true,
            What::TlbInsert { pfn: p, .. } => p.raw() as u64 == pfn,
            What::PteSet { old, new, .. } => maps(old, pfn) || maps(new, pfn),
            What::Dma { pfn: p, .. } => p.raw() as u64 == pfn,
            What::Note(_) | What::Routine { .. } => false,
        })
        .collect()
}

/// Does `pte` name frame `pfn`, as `pte_pfn()` reads it (a swap or file entry can look like
/// it does: that is what the 2.6.14 filter trusted)?
fn maps(pte: Pte, pfn: u64) -> bool {
    pte.0 != 0 && pte.raw_pfn().raw() as u64 == pfn
}

/// The frame the drawing is about: the one of the first violation's value, else of its
/// frame.
fn focus_pfn(o: &Outcome, line_bytes: u64) -> Option<u64> {
    let v = o.violations.first()?;
    let trace = o.trace.as_ref()?;
    let page_lines = PAGE_SIZE / line_bytes;
    match &v.kind {
        ViolationKind::WrongValue { allowed, source_line, observed, .. } => {
            let store_of = |want: &dyn Fn(u64) -> bool| {
                trace
                    .events
                    .iter()
                    .rfind(|e| e.step <= v.step && matches!(e.what, What::Store { value, .. } if want(value)))
            };
            let tag_of = |e: &TraceEvent| match e.what {
                What::Store { tag, .. } => Some(tag),
                _ => None,
            };
            store_of(&|x| allowed.contains(&x))
                .and_then(tag_of)
                .or(*source_line)
                .or_else(|| store_of(&|x| x == *observed).and_then(tag_of))
                .map(|t| t / page_lines)
        }
        ViolationKind::Broken { .. } => match v.loc.page {
            PageLoc::Frame { pfn } => Some(pfn as u64),
            _ => v.detail.iter().find_map(|d| {
                let i = d.find("pfn:0x")?;
                let hex: String = d[i + 6..].chars().take_while(char::is_ascii_hexdigit).collect();
                u64::from_str_radix(&hex, 16).ok()
            }),
        },
    }
}

/// Escapes text for XML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() && c != '\n' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Geometry.
const LEFT: f64 = 190.0;
const WIDTH: f64 = 1500.0;
const ROW: f64 = 18.0;

/// How a lane draws one kind of span: its class and colours, and the width from which its
/// label fits inside.
struct BarStyle {
    class: &'static str,
    fill: &'static str,
    stroke: &'static str,
    label_from: f64,
}

const OP_BAR: BarStyle = BarStyle { class: "op", fill: "#9ecae1", stroke: "#3182bd", label_from: 60.0 };
const ROUTINE_BAR: BarStyle =
    BarStyle { class: "routine", fill: "#fdd0a2", stroke: "#e6550d", label_from: 70.0 };

/// A span of a lane from `x0` to `x1` (at least 2 px wide) at row `y`: one rect with `title`
/// as its hover text, and `label` inside it when it is wide enough.
fn bar(svg: &mut String, st: &BarStyle, x0: f64, x1: f64, y: f64, title: &str, label: &str) {
    let w = (x1 - x0).max(2.0);
    let _ = write!(
        svg,
        r#"<rect class="{}" x="{x0}" y="{y}" width="{w}" height="{}" fill="{}" stroke="{}"><title>{}</title></rect>"#,
        st.class,
        ROW - 2.0,
        st.fill,
        st.stroke,
        esc(title)
    );
    if w > st.label_from {
        let _ = write!(svg, r#"<text x="{}" y="{}" font-size="9">{}</text>"#, x0 + 2.0, y + 12.0, esc(label));
    }
}

/// The page of `o` (which must have been run with tracing).
pub fn page(o: &Outcome, info: &PageInfo<'_>) -> String {
    let last = o.steps.max(1);
    let x = |step: u64| LEFT + WIDTH * step as f64 / last as f64;
    let ops = op_spans(o);
    let routines: Vec<RoutineSpan> = o.trace.as_ref().map(|t| routine_spans(t, o.steps)).unwrap_or_default();
    let events = drawn_events(o, info.line_bytes);
    let page_lines = PAGE_SIZE / info.line_bytes;
    let colours_sets = (page_lines as usize).max(1);
    let cpus: usize = ops
        .iter()
        .map(|s| s.cpu.index() + 1)
        .chain(routines.iter().map(|s| s.cpu.index() + 1))
        .chain(events.iter().map(|e| e.cpu.index() + 1))
        .max()
        .unwrap_or(1);
    let max_depth = routines.iter().map(|r| r.depth + 1).max().unwrap_or(0);
    // Rows: per CPU an operations row and one per routine depth; then the cache locations;
    // then a TLB row per CPU; then the PTE row.
    let mut y = 40.0;
    let mut rows: Vec<(f64, String)> = Vec::new();
    let mut cpu_rows = Vec::new();
    for c in 0..cpus {
        cpu_rows.push(y);
        rows.push((y, format!("cpu{c} operations")));
        for d in 0..max_depth {
            rows.push((
                y + ROW * (d + 1) as f64,
                if d == 0 { format!("cpu{c} kernel routines") } else { String::new() },
            ));
        }
        y += ROW * (max_depth + 1) as f64 + 8.0;
    }
    let mut locs: BTreeSet<(u8, u32, u32)> = BTreeSet::new();
    for e in &events {
        if let What::Fill { set, alias, .. }
        | What::Evict { set, alias, .. }
        | What::WriteBack { set, alias, .. }
        | What::Store { set, alias, .. }
        | What::StoreLine { set, alias, .. }
        | What::Invalidate { set, alias, .. } = e.what
        {
            locs.insert((e.cpu.0, (set as usize / colours_sets) as u32, alias));
        }
    }
    let cache_y0 = y + 10.0;
    let loc_y = |cpu: u8, colour: u32, alias: u32| -> f64 {
        let i = locs.iter().position(|l| *l == (cpu, colour, alias)).unwrap_or(0);
        cache_y0 + ROW * i as f64
    };
    for (i, (c, colour, alias)) in locs.iter().enumerate() {
        let lo = *colour as u64 * page_lines;
        rows.push((
            cache_y0 + ROW * i as f64,
            format!("cpu{c} sets {lo}..{} way {alias}", lo + page_lines - 1),
        ));
    }
    y = cache_y0 + ROW * locs.len().max(1) as f64 + 10.0;
    let flush_y = y;
    rows.push((flush_y, "flush instructions".into()));
    y += ROW + 6.0;
    let tlb_y0 = y;
    for c in 0..cpus {
        rows.push((tlb_y0 + ROW * c as f64, format!("cpu{c} TLB")));
    }
    y = tlb_y0 + ROW * cpus as f64 + 6.0;
    let pte_y = y;
    rows.push((pte_y, "PTEs and DMA".into()));
    let height = pte_y + ROW + 40.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" viewBox="0 0 {} {height}" font-family="monospace" font-size="11">"#,
        LEFT + WIDTH + 20.0,
        LEFT + WIDTH + 20.0
    );
    for (ry, label) in &rows {
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{ry}" width="{WIDTH}" height="{}" fill="#f4f4f4"/><text x="4" y="{}">{}</text>"##,
            ROW - 2.0,
            ry + 12.0,
            esc(label)
        );
    }
    // Axis: steps.
    for i in 0..=10 {
        let s = last * i / 10;
        let _ = write!(
            svg,
            r##"<line x1="{0}" y1="30" x2="{0}" y2="{1}" stroke="#ddd"/><text x="{0}" y="24" text-anchor="middle">{s}</text>"##,
            x(s),
            height - 30.0
        );
    }
    let _ = write!(svg, r#"<text x="4" y="24">step</text>"#);
    // The violating read.
    if let Some(v) = o.violations.first() {
        let (a, b) = (x(v.start()), x(v.step).max(x(v.start()) + 3.0));
        let _ = write!(
            svg,
            r##"<rect class="violation" x="{a}" y="30" width="{}" height="{}" fill="#ff0000" fill-opacity="0.18" stroke="#d00000"><title>{}</title></rect>"##,
            b - a,
            height - 60.0,
            esc(&format!("violation: {}", v.summary()))
        );
    }
    // Operations and routines.
    for s in &ops {
        let ry = cpu_rows[s.cpu.index()];
        let label = format!("#{} {}", s.index, s.op.split([' ', '{']).next().unwrap_or(""));
        bar(&mut svg, &OP_BAR, x(s.begin), x(s.end), ry, &op_title(s), &label);
    }
    for r in &routines {
        let ry = cpu_rows[r.cpu.index()] + ROW * (r.depth + 1) as f64;
        let title = format!("cpu{} {} steps {}..={}", r.cpu.0, r.name, r.begin, r.end);
        bar(&mut svg, &ROUTINE_BAR, x(r.begin), x(r.end), ry, &title, r.name);
    }
    // Events: exactly one element each.
    for e in &events {
        let ex = x(e.step);
        let title = esc(&event_title(e, info.line_bytes));
        let (kind, shape) = match e.what {
            What::Fill { set, alias, speculative, .. } => {
                let ly = loc_y(e.cpu.0, (set as usize / colours_sets) as u32, alias);
                let (k, col) = if speculative { ("spec-fill", "#74c476") } else { ("fill", "#3182bd") };
                (
                    k,
                    format!(
                        r##"<rect x="{}" y="{}" width="4" height="{}" fill="{col}""##,
                        ex - 2.0,
                        ly + 2.0,
                        ROW - 6.0
                    ),
                )
            }
            What::Store { set, alias, .. } | What::StoreLine { set, alias, .. } => {
                let ly = loc_y(e.cpu.0, (set as usize / colours_sets) as u32, alias);
                (
                    "store",
                    format!(r##"<circle cx="{ex}" cy="{}" r="4" fill="#fd8d3c""##, ly + ROW / 2.0 - 1.0),
                )
            }
            What::WriteBack { set, alias, .. } => {
                let ly = loc_y(e.cpu.0, (set as usize / colours_sets) as u32, alias);
                (
                    "write-back",
                    format!(r##"<path d="M{} {} l4 -8 l4 8 z" fill="#31a354""##, ex - 4.0, ly + ROW - 4.0),
                )
            }
            What::Evict { set, alias, .. } => {
                let ly = loc_y(e.cpu.0, (set as usize / colours_sets) as u32, alias);
                (
                    "evict",
                    format!(
                        r##"<rect x="{}" y="{}" width="6" height="6" fill="#8c6d31""##,
                        ex - 3.0,
                        ly + 5.0
                    ),
                )
            }
            What::Invalidate { set, alias, by, .. } => {
                let ly = loc_y(e.cpu.0, (set as usize / colours_sets) as u32, alias);
                let (k, col) = if by == Insn::Pdc { ("purge", "#de2d26") } else { ("invalidate", "#756bb1") };
                (
                    k,
                    format!(
                        r##"<rect x="{}" y="{}" width="2" height="{}" fill="{col}""##,
                        ex - 1.0,
                        ly,
                        ROW - 2.0
                    ),
                )
            }
            What::Flush { insn, .. } => {
                let col = if insn == Insn::Pdc { "#de2d26" } else { "#756bb1" };
                (
                    "flush",
                    format!(
                        r##"<rect x="{}" y="{}" width="2" height="{}" fill="{col}""##,
                        ex - 1.0,
                        flush_y + 2.0,
                        ROW - 6.0
                    ),
                )
            }
            What::Nullified { .. } => (
                "nullified",
                format!(
                    r##"<rect x="{}" y="{}" width="2" height="{}" fill="#969696""##,
                    ex - 1.0,
                    flush_y + 2.0,
                    ROW - 6.0
                ),
            ),
            What::TlbInsert { .. } => {
                let ty = tlb_y0 + ROW * e.cpu.index() as f64;
                ("tlb-insert", format!(r##"<path d="M{} {} l5 8 l-10 0 z" fill="#17becf""##, ex, ty + 3.0))
            }
            What::Purge { .. } | What::PurgeSpace { .. } | What::PurgeAll { .. } => {
                let ty = tlb_y0 + ROW * e.cpu.index() as f64;
                (
                    "tlb-purge",
                    format!(
                        r##"<rect x="{}" y="{ty}" width="2" height="{}" fill="#d62728""##,
                        ex - 1.0,
                        ROW - 2.0
                    ),
                )
            }
            What::PteSet { .. } => {
                ("pte", format!(r##"<path d="M{ex} {} l5 6 l-5 6 l-5 -6 z" fill="#9467bd""##, pte_y + 2.0))
            }
            What::Dma { .. } => (
                "dma",
                format!(
                    r##"<rect x="{}" y="{}" width="6" height="{}" fill="#636363""##,
                    ex - 3.0,
                    pte_y + 2.0,
                    ROW - 6.0
                ),
            ),
            What::Note(_) | What::Routine { .. } => continue,
        };
        let _ = write!(svg, r#"{shape} class="ev ev-{kind}"><title>{title}</title></{}>"#, tag_of(&shape));
    }
    svg.push_str("</svg>");

    let legend = [
        ("#9ecae1", "operation of the CPU's program"),
        ("#fdd0a2", "kernel routine (nested ones below)"),
        ("#3182bd", "fill from memory"),
        ("#74c476", "speculative fill"),
        ("#fd8d3c", "store"),
        ("#31a354", "write-back"),
        ("#756bb1", "flush (fdc) / invalidate"),
        ("#de2d26", "purge (pdc): discarded"),
        ("#969696", "flush nullified (no translation)"),
        ("#17becf", "TLB insert"),
        ("#d62728", "TLB purge"),
        ("#9467bd", "PTE change"),
        ("#636363", "DMA to or from disk"),
        ("#ff9999", "the violating read"),
    ];
    let mut html = String::new();
    html.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n");
    html.push_str("<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"UTF-8\"/>");
    let _ = write!(html, "<title>{}</title>", esc(info.title));
    html.push_str(
        "<style>body{font-family:monospace;font-size:12px;margin:12px}h1{font-size:15px}\
         .acct{white-space:pre-wrap;background:#fafafa;border:1px solid #ddd;padding:6px}\
         .key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}</style></head><body>",
    );
    let _ = write!(html, "<h1>{}</h1>", esc(info.title));
    let _ = write!(html, "<div class=\"acct\">{}</div>", esc(&info.account.join("\n")));
    html.push_str("<p class=\"key\">");
    for (c, what) in legend {
        let _ = write!(html, "<span style=\"background:{c}\"></span>{}", esc(what));
    }
    html.push_str("</p><p>Hover an element for its details. Cache rows: one per CPU, page-sized group of sets (a colour) and virtual way that held a line of the page.</p>");
    html.push_str(&svg);
    html.push_str("</body></html>\n");
    html
}

/// The element name a shape string starts with.
fn tag_of(shape: &str) -> &str {
    shape.trim_start_matches('<').split(' ').next().unwrap_or("g")
}

fn op_title(s: &OpSpan) -> String {
    format!(
        "cpu{}#{} {} steps {}..={}{}",
        s.cpu.0,
        s.index,
        s.op,
        s.begin,
        s.end,
        s.result.as_ref().map_or(String::new(), |r| format!(" -> {r}"))
    )
}

fn event_title(e: &TraceEvent, line_bytes: u64) -> String {
    let pa = |tag: u64| format!("pa {:#x}", tag * line_bytes);
    let what = match e.what {
        What::Fill { set, alias, tag, speculative } => {
            format!("{}fill set {set} way {alias} {}", if speculative { "speculative " } else { "" }, pa(tag))
        }
        What::Store { set, alias, tag, va, value } => {
            format!("store {value:#x} via {va} set {set} way {alias} {}", pa(tag))
        }
        What::StoreLine { set, alias, tag, va } => {
            format!("whole-line store via {va} set {set} way {alias} {}", pa(tag))
        }
        What::WriteBack { set, alias, tag } => format!("write-back set {set} way {alias} {}", pa(tag)),
        What::Evict { set, alias, tag } => format!("evict set {set} way {alias} {}", pa(tag)),
        What::Invalidate { set, alias, tag, by } => {
            format!("invalidate by {by:?} set {set} way {alias} {}", pa(tag))
        }
        What::Flush { insn, space, va, tag } => format!("{insn:?} {space} {va} -> {}", pa(tag)),
        What::Nullified { insn, space, va } => format!("{insn:?} {space} {va} nullified: no translation"),
        What::TlbInsert { space, va, pfn, flush_only, dirty } => format!(
            "TLB insert {space} {va} -> {pfn}{}{}",
            if flush_only { " flush-only" } else { "" },
            if dirty { " dirty" } else { "" }
        ),
        What::Purge { space, va, broadcast } => {
            format!("TLB purge {space} {va}{}", if broadcast { " on every CPU" } else { "" })
        }
        What::PurgeSpace { space } => format!("TLB purge of {space} on every CPU"),
        What::PurgeAll { target } => format!("whole TLB of {target} purged"),
        What::PteSet { space, va, old, new } => format!("PTE {space} {va}: {old:?} -> {new:?}"),
        What::Dma { pfn, to_memory } => {
            format!("DMA {} {pfn}", if to_memory { "from disk into" } else { "to disk from" })
        }
        What::Note(n) => n.to_string(),
        What::Routine { name, begin } => format!("{} {name}", if begin { "begin" } else { "end" }),
    };
    format!("step {} cpu{}: {what}", e.step, e.cpu.0)
}
