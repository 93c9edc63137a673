//! The report's plain-language summary and what to do, from the month's numbers.

use super::Lang;
use super::aggregate::{Func, Report, blocked};
use super::html::{T, esc, num};
use std::fmt::Write;

pub(super) fn summary(h: &mut String, r: &Report, t: &T) {
    let b = r.blocked();
    let _ = write!(
        h,
        "<section><h2>{}</h2><div class=\"tiles\">",
        t.s("まとめ", "Summary")
    );
    let quarantined_pcs = {
        let mut macs: Vec<_> = r
            .incidents
            .iter()
            .map(|i| i.mac.clone().or(i.ip.clone()).unwrap_or_default())
            .collect();
        macs.sort();
        macs.dedup();
        macs.len() as i64
    };
    for (n, label) in [
        (b, t.s("ブロックした通信", "blocked")),
        (
            r.get(Func::Threat) + r.get(Func::Cnc),
            t.s("うち危険なサイト・C&C", "of them malicious sites and C&C"),
        ),
        (
            r.get(Func::IpsDrop) + r.get(Func::IpsAlert),
            t.s(
                "侵入の試み（遮断＋検知）",
                "intrusion attempts (dropped + logged)",
            ),
        ),
        (quarantined_pcs, t.s("隔離された PC", "PCs quarantined")),
    ] {
        let _ = write!(
            h,
            "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
            num(n),
            label
        );
    }
    h.push_str("</div>");
    let (said, todo) = advice(r, t, quarantined_pcs);
    h.push_str("<ul>");
    for s in said {
        let _ = write!(h, "<li>{s}</li>");
    }
    let _ = write!(
        h,
        "</ul><h3>{}</h3><ul class=\"todo\">",
        t.s("おすすめの対応", "What to do")
    );
    for s in todo {
        let _ = write!(h, "<li>{s}</li>");
    }
    h.push_str("</ul></section>\n");
}

/// Plain-language sentences (already escaped): what happened, and what to do.
fn advice(r: &Report, t: &T, quarantined_pcs: i64) -> (Vec<String>, Vec<String>) {
    let ja = t.0 == Lang::Ja;
    let mut said = Vec::new();
    let mut todo = Vec::new();
    if r.events == 0 {
        said.push(
            t.s(
                "この月のイベントはボックスに記録されていません。",
                "The box recorded no events for this month.",
            )
            .to_string(),
        );
        todo.push(t.s(
            "ボックスがこの月に動いていたなら、ゲートウェイがコントロールプレーンにつながっているか確認してください（mimamori-cp ctl status）。",
            "If the box was running this month, check that the gateway is connected to the control plane (mimamori-cp ctl status).",
        ).to_string());
        return (said, todo);
    }
    let b = r.blocked();
    said.push(if ja {
        format!("この月、ボックスは {} 件の通信をブロックしました。", num(b))
    } else {
        format!(
            "This month the box blocked {} connections or requests.",
            num(b)
        )
    });
    let threats = r.get(Func::Threat);
    if threats > 0 {
        let top = r.sites.iter().find(|s| s.flag != 0).map(|s| esc(&s.name));
        said.push(match (ja, top) {
            (true, Some(s)) => format!("不正サイト・フィッシングサイトへのアクセス {} 件を未然に防ぎました（最多: {s}）。", num(threats)),
            (true, None) => format!("不正サイト・フィッシングサイトへのアクセス {} 件を未然に防ぎました。", num(threats)),
            (false, Some(s)) => format!("{} visits to malicious or phishing sites were stopped before any harm (most often: {s}).", num(threats)),
            (false, None) => format!("{} visits to malicious or phishing sites were stopped before any harm.", num(threats)),
        });
        todo.push(t.s(
            "心当たりのないメールやメッセージのリンクを開かないよう、社内で改めて声をかけてください。",
            "Remind everyone not to open links in unexpected mail or messages.",
        ).to_string());
    }
    if quarantined_pcs > 0 || r.get(Func::Cnc) > 0 {
        said.push(if ja {
            format!("ウイルス感染が疑われる通信（C&C）を {} 件遮断し、{} 台の PC を隔離しました。", num(r.get(Func::Cnc)), quarantined_pcs)
        } else {
            format!("{} command-and-control (C&C) connections of possibly infected PCs were cut, and {} PC(s) quarantined.", num(r.get(Func::Cnc)), quarantined_pcs)
        });
        let still: Vec<String> = r
            .incidents
            .iter()
            .filter(|i| i.released.is_none())
            .map(|i| {
                esc(i
                    .hostname
                    .as_deref()
                    .or(i.mac.as_deref())
                    .or(i.ip.as_deref())
                    .unwrap_or("?"))
            })
            .collect();
        if !still.is_empty() {
            todo.push(if ja {
                format!("隔離中の PC（{}）をウイルス対策ソフトで検査・駆除してから、隔離を解除してください。サポートデスクにもご相談いただけます。", still.join("、"))
            } else {
                format!("Scan and clean the quarantined PC(s) ({}) with anti-virus software before releasing them; the support desk can help.", still.join(", "))
            });
        } else {
            todo.push(t.s(
                "隔離を解除した PC は、しばらく様子を見て、再び同じ警告が出ないか確認してください。",
                "Keep an eye on the released PCs: the same warning again means they are still infected.",
            ).to_string());
        }
    }
    let (drop, alert) = (r.get(Func::IpsDrop), r.get(Func::IpsAlert));
    if drop > 0 {
        let top = r
            .signatures
            .first()
            .map(|s| esc(&s.message))
            .unwrap_or_default();
        said.push(if ja {
            format!(
                "外部からの攻撃など {} 件を侵入防御で遮断しました（最多: {top}）。",
                num(drop)
            )
        } else {
            format!(
                "Intrusion prevention dropped {} attacks (most often: {top}).",
                num(drop)
            )
        });
        todo.push(t.s(
            "PC やサーバー、ネットワーク機器の OS・ソフトウェアを最新に更新してください。",
            "Keep the operating systems and software of PCs, servers and network devices up to date.",
        ).to_string());
    }
    if alert > 0 {
        said.push(if ja {
            format!(
                "侵入検知の {} 件は記録のみで、遮断していません。",
                num(alert)
            )
        } else {
            format!(
                "{} intrusion detections were logged but not blocked.",
                num(alert)
            )
        });
        todo.push(t.s(
            "記録のみの検知が業務に必要な通信でなければ、その検知を「遮断」に設定することを検討してください。",
            "Where a logged-only detection is not traffic you need, consider setting it to block.",
        ).to_string());
    }
    let cat = r.get(Func::Category);
    if cat > 0 {
        let top = r
            .categories
            .iter()
            .find(|c| !c.name.is_empty())
            .map(|c| esc(&c.name));
        said.push(match (ja, top) {
            (true, Some(c)) => format!("業務に関係のないカテゴリのサイトへのアクセス {} 件をブロックしました（最多: {c}）。", num(cat)),
            (true, None) => format!("ブロック対象のサイトへのアクセス {} 件をブロックしました。", num(cat)),
            (false, Some(c)) => format!("{} visits to blocked site categories were stopped (most often: {c}).", num(cat)),
            (false, None) => format!("{} visits to blocked sites were stopped.", num(cat)),
        });
        todo.push(t.s(
            "業務で必要なサイトがブロックされている場合は、サイトの例外（許可）を追加してください。",
            "If a site you need for work is blocked, add a site exception that allows it.",
        ).to_string());
    }
    // The trend: this month against the months before that have numbers.
    let past: Vec<i64> = r
        .trend
        .iter()
        .filter_map(|(_, p)| p.whole())
        .map(blocked)
        .collect();
    if !past.is_empty() && r.complete() {
        let avg = past.iter().sum::<i64>() as f64 / past.len() as f64;
        if avg > 0.0 {
            let change = (b as f64 - avg) / avg * 100.0;
            if change >= 50.0 {
                said.push(if ja {
                    format!(
                        "ブロック数が前の月までの平均より {:.0}% 増えています。",
                        change
                    )
                } else {
                    format!(
                        "Blocks are up {:.0}% on the average of the months before.",
                        change
                    )
                });
                todo.push(
                    t.s(
                        "急に増えた原因（特定の PC、特定のサイト）を下の表で確認してください。",
                        "Use the tables below to find what drove the rise (one PC, one site).",
                    )
                    .to_string(),
                );
            } else if change <= -50.0 {
                said.push(if ja {
                    format!(
                        "ブロック数は前の月までの平均より {:.0}% 減りました。",
                        -change
                    )
                } else {
                    format!(
                        "Blocks are down {:.0}% on the average of the months before.",
                        -change
                    )
                });
            }
        }
    }
    if r.days_with_events < r.days_elapsed {
        said.push(if ja {
            format!(
                "イベントの記録があるのは {} 日中 {} 日です。",
                r.days_elapsed, r.days_with_events
            )
        } else {
            format!(
                "Events were recorded on {} of {} days.",
                r.days_with_events, r.days_elapsed
            )
        });
        todo.push(t.s(
            "記録のない日は、ボックスの電源や接続が切れていた可能性があります。心当たりがなければサポートデスクにご連絡ください。",
            "Days without any record may mean the box was off or disconnected; if you do not know why, contact the support desk.",
        ).to_string());
    }
    if b == 0 && alert == 0 {
        said.push(
            t.s(
                "この月にブロックが必要な通信はありませんでした。",
                "Nothing needed blocking this month.",
            )
            .to_string(),
        );
    }
    if todo.is_empty() {
        todo.push(
            t.s(
                "特に必要な対応はありません。引き続き、OS とソフトウェアの更新を続けてください。",
                "Nothing in particular; keep operating systems and software up to date.",
            )
            .to_string(),
        );
    }
    (said, todo)
}
