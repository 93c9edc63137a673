//! Dated scenarios, part 2: plan and option changes, rental ↔ purchase, the box profile,
//! bad input, monthly statements. Cited as in `scenarios_fees.rs`.

mod common;

use common::*;
use mimamori_contracts::*;

use Clause as C;
use Plan::{Light, Professional, Standard};
// ── 提供条件等 › プラン変更 ───────────────────────────────────────────────────
#[test]
fn s28_upgrade_inside_24_months_waives_the_fee() {
    assert_cited("アップグレードにあたるプラン変更をする場合、機器再生費用 (解約金) は不要");
    let c = rental(Light, d(2025, 1, 15));
    let event = Event::PlanChange {
        to: Standard,
        work: Work::provider("j2"),
    };
    let got = fees(&c, &event, d(2025, 10, 3)).unwrap();
    assert_eq!(
        lines(&got),
        [
            (4_950, C::ChangeInitialFees),
            (11_000, C::ChangeInitialFees),
            (0, C::UpgradeWaiver)
        ]
    );
    assert_eq!(got[0].amount_from, Some(C::BasicWork));
}

#[test]
fn s29_downgrade_inside_24_months_pays() {
    assert_cited("ダウングレードにあたるプラン変更をする場合、機器再生費用 (解約金) をお支払い");
    let c = rental(Professional, d(2025, 1, 15));
    let event = Event::PlanChange {
        to: Standard,
        work: Work::provider("j2"),
    };
    let got = fees(&c, &event, d(2025, 10, 3)).unwrap();
    assert_eq!(cancel_fee(&got), (16_500, C::DowngradeFee));
    assert_eq!(total(&got), 16_500 + 15_950);
}

#[test]
fn s30_downgrade_in_month_3_is_free() {
    assert_cited("その月を含む3カ月の間にプラン変更した場合は");
    let c = rental(Professional, d(2025, 1, 15));
    let event = Event::PlanChange {
        to: Light,
        work: Work::provider("j2"),
    };
    let got = fees(&c, &event, d(2025, 3, 31)).unwrap();
    assert_eq!(cancel_fee(&got), (0, C::DowngradeFee));
    assert_eq!(total(&got), 15_950);
}

#[test]
fn s31_downgrade_in_month_4_pays() {
    assert_cited("ダウングレードにあたるプラン変更をする場合");
    let c = rental(Standard, d(2025, 1, 15));
    let event = Event::PlanChange {
        to: Light,
        work: Work::provider("j2"),
    };
    assert_eq!(
        cancel_fee(&fees(&c, &event, d(2025, 4, 1)).unwrap()),
        (16_500, C::DowngradeFee)
    );
}

#[test]
fn s32_new_fee_from_the_month_after() {
    assert_cited("契約変更日の翌月から変更後プランの月額利用料");
    let c = rental(Light, d(2025, 1, 15))
        .change_plan(Professional, Work::provider("j2"), d(2025, 5, 20))
        .unwrap();
    let may = fees(&c, &Event::Month, d(2025, 5, 31)).unwrap();
    let june = fees(&c, &Event::Month, d(2025, 6, 1)).unwrap();
    let july = fees(&c, &Event::Month, d(2025, 7, 1)).unwrap();
    assert_eq!(lines(&may), [(7_150, C::ChangeFeeNextMonth)]);
    assert_eq!(lines(&june), [(18_700, C::ChangeFeeNextMonth)]);
    assert_eq!(lines(&july), [(18_700, C::RentalMonthly(Professional))]);
}

#[test]
fn s33_cancel_within_3_months_of_a_change_pays() {
    assert_cited("変更後プラン利用開始月から3カ月以内であっても");
    // Month 30 of the service: no fee without the change.
    let start = rental(Light, d(2023, 1, 10));
    assert_eq!(
        total(&fees(&start, &Event::Cancellation, d(2025, 7, 15)).unwrap()),
        0
    );
    let c = start
        .change_plan(Standard, Work::provider("j2"), d(2025, 6, 10))
        .unwrap();
    let got = fees(&c, &Event::Cancellation, d(2025, 7, 15)).unwrap();
    assert_eq!(lines(&got), [(16_500, C::ChangeCancelEvenEarly)]);
    assert_eq!(got[0].amount_from, Some(C::RentalCancelFee));
}

#[test]
fn s34_change_in_month_2_then_cancel_in_month_3_pays() {
    assert_cited("プラン変更後の解約については");
    // Choice: the change window has no free months, even inside the service's first three.
    let c = rental(Light, d(2025, 1, 15))
        .change_plan(Standard, Work::provider("j2"), d(2025, 2, 3))
        .unwrap();
    let got = fees(&c, &Event::Cancellation, d(2025, 3, 20)).unwrap();
    assert_eq!(lines(&got), [(16_500, C::ChangeCancelEvenEarly)]);
}

#[test]
fn s35_change_window_is_24_months_from_the_change_month() {
    assert_cited("プラン変更を行った月から24カ月以内に解約された場合");
    let c = rental(Standard, d(2022, 1, 10))
        .change_plan(Professional, Work::provider("j2"), d(2024, 3, 5))
        .unwrap();
    let month_24 = fees(&c, &Event::Cancellation, d(2026, 2, 27)).unwrap();
    let month_25 = fees(&c, &Event::Cancellation, d(2026, 3, 2)).unwrap();
    assert_eq!(lines(&month_24), [(16_500, C::ChangeCancelWindow)]);
    assert_eq!(lines(&month_25), [(0, C::RentalCancelFee)]);
}

#[test]
fn s36_upgrade_then_downgrade_inside_24_months_of_it() {
    assert_cited("月額利用料の高いプランから安いプランへの変更");
    let c = rental(Light, d(2023, 1, 10));
    let up = Event::PlanChange {
        to: Professional,
        work: Work::provider("j2"),
    };
    let (c, up_lines) = apply(&c, &up, d(2024, 6, 1)).unwrap();
    assert_eq!(cancel_fee(&up_lines), (0, C::UpgradeWaiver));
    // Month 27 of the service, month 10 of the upgrade's window.
    let down = Event::PlanChange {
        to: Standard,
        work: Work::provider("j3"),
    };
    let (_, down_lines) = apply(&c, &down, d(2025, 3, 1)).unwrap();
    assert_eq!(cancel_fee(&down_lines), (16_500, C::DowngradeFee));
    assert_eq!(
        down_lines.last().unwrap().amount_from,
        Some(C::ChangeCancelWindow)
    );
}

#[test]
fn s37_downgrade_past_every_window_is_free() {
    assert_cited("本サービスご利用開始月の4カ月め以降、24カ月以内");
    // Choice: the fee is the cancellation fee, bounded to 24 months (see fees.rs).
    let c = rental(Professional, d(2022, 1, 10));
    let event = Event::PlanChange {
        to: Light,
        work: Work::provider("j2"),
    };
    let got = fees(&c, &event, d(2025, 4, 1)).unwrap();
    assert_eq!(cancel_fee(&got), (0, C::RentalCancelFee));
}

#[test]
fn s38_upgrade_after_month_24_pays_no_fee() {
    assert_cited("アップグレードとは、月額利用料の安いプランから高いプランへの変更");
    let c = rental(Standard, d(2022, 1, 10));
    let event = Event::PlanChange {
        to: Professional,
        work: Work::provider("j2"),
    };
    let got = fees(&c, &event, d(2025, 4, 1)).unwrap();
    assert_eq!(total(&got), 15_950);
}

#[test]
fn s39_a_change_pays_the_initial_fees_again() {
    assert_cited("プラン変更の際は再度初期費用がかかります");
    // Self-installed Standard → Light: the work is waived as at a start, the fee is not.
    let c = rental(Standard, d(2025, 1, 15));
    let event = Event::PlanChange {
        to: Light,
        work: Work::by_customer("j2"),
    };
    let got = fees(&c, &event, d(2025, 6, 1)).unwrap();
    assert_eq!(
        lines(&got),
        [
            (0, C::SelfInstallWaiver),
            (0, C::SelfInstallWaiver),
            (16_500, C::DowngradeFee)
        ]
    );
    // A self-installed Professional: both fees again (the waiver is for Light/Standard).
    let event = Event::PlanChange {
        to: Professional,
        work: Work::by_customer("j3"),
    };
    assert_eq!(total(&fees(&c, &event, d(2025, 6, 1)).unwrap()), 15_950);
}

#[test]
fn s40_rental_plan_change_allowed() {
    assert_cited("レンタルタイプ：可能");
    let c = rental(Light, d(2025, 1, 15));
    let c = c
        .change_plan(Standard, Work::provider("j2"), d(2025, 2, 1))
        .unwrap();
    let c = c
        .change_plan(Professional, Work::provider("j3"), d(2025, 2, 20))
        .unwrap();
    assert_eq!(c.plan_on(d(2025, 2, 25)), Professional);
    assert_eq!(c.billed_plan(ym(2025, 2)), Light);
    assert_eq!(c.billed_plan(ym(2025, 3)), Professional);
}

// ── options on rental ─────────────────────────────────────────────────────────
#[test]
fn s41_option_added_bills_from_next_month() {
    assert_cited("24時間訪問修理オプションサービスもご用意しております。");
    let c = rental(Light, d(2025, 1, 15))
        .change_option(true, d(2025, 3, 10))
        .unwrap();
    assert_eq!(
        total(&fees(&c, &Event::Month, d(2025, 3, 1)).unwrap()),
        7_150
    );
    let april = fees(&c, &Event::Month, d(2025, 4, 1)).unwrap();
    assert_eq!(
        lines(&april),
        [
            (7_150, C::RentalMonthly(Light)),
            (2_200, C::ModelOptionChange)
        ]
    );
    assert_eq!(
        c.box_profile(d(2025, 3, 9)).unwrap().repair,
        RepairWindow::Daytime {
            from_hour: 9,
            to_hour: 17
        }
    );
    assert_eq!(
        c.box_profile(d(2025, 3, 10)).unwrap().repair,
        RepairWindow::AllDay
    );
}

#[test]
fn s42_option_change_opens_no_fee_window() {
    assert_cited("model: an option change is not a plan change");
    let c = rental(Light, d(2023, 1, 10));
    let (c, got) = apply(&c, &Event::OptionChange { repair_24h: true }, d(2025, 6, 1)).unwrap();
    assert_eq!(lines(&got), [(0, C::ModelOptionChange)]);
    assert_eq!(
        total(&fees(&c, &Event::Cancellation, d(2025, 7, 1)).unwrap()),
        0
    );
}

// ── rental ↔ purchase ──────────────────────────────────────────────────────────
#[test]
fn s43_rental_to_purchase_is_cancel_and_new() {
    assert_cited("レンタルタイプを解約し、改めて売切タイプの新規契約が必要です");
    let old = rental(Standard, d(2025, 1, 15));
    let new = terms(ContractKind::Purchase, Standard, true, d(2025, 10, 1));
    let switch = old.switch(d(2025, 10, 1), new).unwrap();
    assert_eq!(switch.clause, C::RentalToPurchase);
    assert_eq!(switch.cancelled.cancelled(), Some(d(2025, 10, 1)));
    let got = switch_fees(&old, d(2025, 10, 1), &switch.new).unwrap();
    assert_eq!(total(&got), 16_500 + 671_000 + 15_950);
}

#[test]
fn s44_purchase_to_rental_is_cancel_and_new() {
    assert_cited("売切タイプを解約し、改めてレンタルタイプの新規契約が必要です");
    let old = purchase(Light, false, d(2025, 1, 15));
    let new = terms(ContractKind::Rental, Professional, false, d(2027, 7, 1));
    let switch = old.switch(d(2027, 6, 30), new).unwrap();
    assert_eq!(switch.clause, C::PurchaseToRental);
    let got = switch_fees(&old, d(2027, 6, 30), &switch.new).unwrap();
    assert_eq!(
        lines(&got),
        [
            (0, C::PurchaseCancel),
            (4_950, C::BasicWork),
            (11_000, C::DeviceWork)
        ]
    );
    assert_eq!(
        total(&fees(&switch.new, &Event::Month, d(2027, 7, 1)).unwrap()),
        18_700
    );
}

#[test]
fn s45_a_switch_must_change_the_type() {
    assert_cited("model: a switch goes between rental and purchase");
    let old = rental(Standard, d(2025, 1, 15));
    let same = terms(ContractKind::Rental, Light, false, d(2025, 10, 1));
    assert!(matches!(
        old.switch(d(2025, 10, 1), same),
        Err(Refusal::NotASwitch { .. })
    ));
    let early = terms(ContractKind::Purchase, Light, false, d(2025, 9, 30));
    assert!(matches!(
        old.switch(d(2025, 10, 1), early),
        Err(Refusal::OutOfOrder { .. })
    ));
}

// ── the plan drives the box ───────────────────────────────────────────────────
#[test]
fn s46_on_site_quota_per_plan() {
    assert_cited("月1回 Lightプラン：1台、Standardプラン：1台、Professionalプラン3台まで");
    let q = |p| profile(p, false).on_site;
    assert_eq!(
        q(Light),
        OnSiteQuota {
            visits_per_month: 1,
            pcs_per_visit: 1
        }
    );
    assert_eq!(
        q(Standard),
        OnSiteQuota {
            visits_per_month: 1,
            pcs_per_visit: 1
        }
    );
    assert_eq!(
        q(Professional),
        OnSiteQuota {
            visits_per_month: 1,
            pcs_per_visit: 3
        }
    );
}

#[test]
fn s47_repair_window_by_option() {
    assert_cited("9：00～17：00（年中無休）で訪問修理に伺います。");
    let day = profile(Standard, false).repair;
    assert_eq!(day.clause(), C::RepairDaytime);
    assert!(day.covers(9, 0) && !day.covers(17, 0) && !day.covers(2, 0));
    assert!(profile(Standard, true).repair.covers(2, 0));
}

#[test]
fn s48_tier_follows_the_plan_from_the_change_date() {
    assert_cited("model: the plan serves the box from the change date");
    let c = rental(Light, d(2025, 1, 15))
        .change_plan(Professional, Work::provider("j2"), d(2025, 5, 20))
        .unwrap();
    assert_eq!(
        c.box_profile(d(2025, 5, 19)).unwrap().tier.as_str(),
        "light"
    );
    assert_eq!(
        c.box_profile(d(2025, 5, 20)).unwrap().tier.as_str(),
        "professional"
    );
    assert_eq!(profile(Standard, false).tier.as_str(), "standard");
    assert!(c.box_profile(d(2025, 1, 14)).is_none());
}

// ── bad input ─────────────────────────────────────────────────────────────────
#[test]
fn s49_dates_out_of_order() {
    assert_cited("model: events on a contract are dated in order");
    let c = rental(Light, d(2025, 1, 15));
    let err = c
        .change_plan(Standard, Work::provider("j2"), d(2025, 1, 14))
        .unwrap_err();
    assert!(matches!(
        err,
        Refusal::OutOfOrder {
            clause: C::ModelDatesInOrder,
            ..
        }
    ));
    let c = c
        .change_plan(Standard, Work::provider("j2"), d(2025, 6, 1))
        .unwrap();
    assert!(matches!(
        c.cancel(d(2025, 5, 31)),
        Err(Refusal::OutOfOrder { .. })
    ));
    assert!(matches!(
        c.change_option(true, d(2025, 5, 1)),
        Err(Refusal::OutOfOrder { .. })
    ));
    assert!(matches!(
        fees(&c, &Event::Month, d(2024, 12, 31)),
        Err(Refusal::OutOfOrder { .. })
    ));
    assert!(matches!(
        fees(&c, &Event::Start, d(2025, 1, 16)),
        Err(Refusal::NotTheStart { .. })
    ));
}

#[test]
fn s50_unknown_plan() {
    assert_cited("プラン名 単位 金額");
    let err = "Premium".parse::<Plan>().unwrap_err();
    assert_eq!(
        err,
        Refusal::UnknownPlan {
            name: "Premium".into(),
            clause: C::PlanNames
        }
    );
    assert!("Premiumプラン".parse::<Plan>().is_err());
    assert!(serde_json::from_str::<Plan>("\"gold\"").is_err());
    assert_eq!("Lightプラン".parse::<Plan>().unwrap(), Light);
}

#[test]
fn s51_change_on_a_cancelled_contract() {
    assert_cited("model: a cancelled contract takes no further change");
    let c = rental(Standard, d(2025, 1, 15))
        .cancel(d(2025, 6, 30))
        .unwrap();
    let err = c
        .change_plan(Professional, Work::provider("j2"), d(2025, 7, 1))
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::Ended {
            ended: d(2025, 6, 30),
            clause: C::ModelEnded
        }
    );
    assert!(matches!(
        c.change_option(true, d(2025, 7, 1)),
        Err(Refusal::Ended { .. })
    ));
    assert!(matches!(
        c.cancel(d(2025, 7, 1)),
        Err(Refusal::Ended { .. })
    ));
    assert!(matches!(
        fees(&c, &Event::Month, d(2025, 7, 1)),
        Err(Refusal::Ended { .. })
    ));
    assert!(matches!(
        c.change_plan(Light, Work::provider("j3"), d(2025, 6, 30)),
        Err(Refusal::Ended { .. })
    ));
}

#[test]
fn s52_nothing_half_applied() {
    assert_cited("プラン変更に加え");
    let c = rental(Standard, d(2025, 1, 15));
    let before = c.clone();
    assert!(
        apply(
            &c,
            &Event::PlanChange {
                to: Standard,
                work: Work::provider("j2")
            },
            d(2025, 3, 1)
        )
        .is_err()
    );
    assert_eq!(c, before);
    // A stored record that breaks a rule does not load.
    let mut bad = serde_json::to_value(purchase(Light, false, d(2025, 1, 15))).unwrap();
    bad["changes"] = serde_json::json!([
        { "date": "2025-03-01", "what": { "kind": "plan", "to": "standard",
          "work": { "installer": "provider", "job": "j2" } } }
    ]);
    let err = serde_json::from_value::<Contract>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("purchased box cannot change plan"), "{err}");
}

#[test]
fn s53_round_trip_through_json() {
    assert_cited("model: a contract is stored as its history");
    let c = rental(Light, d(2025, 1, 15))
        .change_plan(Standard, Work::provider("j2"), d(2025, 5, 20))
        .unwrap()
        .change_option(true, d(2025, 6, 1))
        .unwrap()
        .cancel(d(2026, 2, 1))
        .unwrap();
    let text = serde_json::to_string(&c).unwrap();
    assert!(
        text.contains("\"start\":\"2025-01-15\"") && text.contains("\"cancelled\":\"2026-02-01\"")
    );
    assert_eq!(serde_json::from_str::<Contract>(&text).unwrap(), c);
}

// ── the monthly statement ─────────────────────────────────────────────────────
#[test]
fn s54_statement_over_three_boxes() {
    assert_cited("専用BOX1台ごと");
    let b1 = Contract::open(NewContract {
        box_id: "b1".into(),
        ..terms(ContractKind::Rental, Standard, true, d(2025, 1, 10))
    });
    let mut t = terms(ContractKind::Purchase, Professional, false, d(2025, 6, 5));
    t.box_id = "b2".into();
    t.work = Work::provider("j9");
    let b2 = Contract::open(t);
    let b3 = Contract::open(NewContract {
        box_id: "b3".into(),
        ..terms(ContractKind::Rental, Light, false, d(2025, 2, 1))
    })
    .cancel(d(2025, 6, 20))
    .unwrap();
    let s = statement("c1", &[b1, b2, b3], ym(2025, 6)).unwrap();
    assert_eq!(
        s.for_box("b1").map(|l| l.charge.amount.0).sum::<u64>(),
        13_200
    );
    assert_eq!(
        s.for_box("b2").map(|l| l.charge.amount.0).sum::<u64>(),
        957_000 + 15_950
    );
    assert_eq!(
        s.for_box("b3").map(|l| l.charge.amount.0).sum::<u64>(),
        7_150 + 16_500
    );
    assert_eq!(s.total, Yen(1_009_800));
    assert!(s.lines.windows(2).all(|w| w[0].date <= w[1].date));
    assert!(s.to_string().ends_with("total 1,009,800円"));
}

#[test]
fn s55_past_statement_unchanged_by_later_events() {
    assert_cited("契約変更日の翌月から");
    let c = rental(Professional, d(2025, 1, 15))
        .change_plan(Light, Work::provider("j2"), d(2025, 5, 20))
        .unwrap();
    let may = statement("c1", std::slice::from_ref(&c), ym(2025, 5)).unwrap();
    assert_eq!(may.total, Yen(18_700 + 15_950 + 16_500));
    let later = c.cancel(d(2025, 8, 1)).unwrap();
    assert_eq!(
        statement("c1", std::slice::from_ref(&later), ym(2025, 5)).unwrap(),
        may
    );
    // August: Light's month, and the fee of a cancel inside the change's window.
    let aug = statement("c1", &[later], ym(2025, 8)).unwrap();
    assert_eq!(aug.total, Yen(7_150 + 16_500));
}

#[test]
fn s56_statement_of_one_customer_only() {
    assert_cited("model: a statement is for one customer");
    let mine = rental(Light, d(2025, 1, 15));
    let theirs = Contract::open(NewContract {
        customer: "c2".into(),
        ..terms(ContractKind::Rental, Light, false, d(2025, 1, 15))
    });
    let err = statement("c1", &[mine, theirs], ym(2025, 2)).unwrap_err();
    assert_eq!(err.clause(), C::ModelOneCustomer);
}

#[test]
fn s57_statement_at_licence_end() {
    assert_cited("機器のライセンス切れ");
    let c = purchase(Standard, true, d(2025, 1, 15));
    let dec = statement("c1", std::slice::from_ref(&c), ym(2029, 12)).unwrap();
    assert_eq!(
        lines(
            &dec.lines
                .iter()
                .map(|l| l.charge.clone())
                .collect::<Vec<_>>()
        ),
        [(0, C::PurchaseNoMonthly)]
    );
    let jan = statement("c1", std::slice::from_ref(&c), ym(2030, 1)).unwrap();
    assert_eq!(
        lines(
            &jan.lines
                .iter()
                .map(|l| l.charge.clone())
                .collect::<Vec<_>>()
        ),
        [(0, C::LicenceEnd)]
    );
    assert!(statement("c1", &[c], ym(2030, 2)).unwrap().lines.is_empty());
}
