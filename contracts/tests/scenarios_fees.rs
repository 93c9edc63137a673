//! Dated scenarios, part 1: prices, purchase terms, work fees, the cancellation fee.
//!
//! Written from the seed's own sentences: each test's first line cites the sentence it checks
//! (a short verbatim piece; `common::assert_cited` finds it in the seed), or `model:` and the
//! rule of ours it checks where the seed is silent. `tests/seed.rs` counts the table across
//! both files.

mod common;

use common::*;
use mimamori_contracts::*;

use Clause as C;
use Plan::{Light, Professional, Standard};

// ── 料金 › 1. 利用料金 (rental) ──────────────────────────────────────────────
#[test]
fn s01_light_rental_month() {
    assert_cited("Lightプラン 専用BOX1台ごと 7,150円");
    let c = rental(Light, d(2025, 1, 15));
    let got = fees(&c, &Event::Month, d(2025, 2, 1)).unwrap();
    assert_eq!(lines(&got), [(7_150, C::RentalMonthly(Light))]);
    assert_eq!(got[0].tax, TaxBasis::Included);
}

#[test]
fn s02_standard_rental_month() {
    assert_cited("Standardプラン 専用BOX1台ごと 11,000円");
    let c = rental(Standard, d(2025, 1, 15));
    assert_eq!(
        total(&fees(&c, &Event::Month, d(2025, 7, 9)).unwrap()),
        11_000
    );
}

#[test]
fn s03_professional_rental_month() {
    assert_cited("Professionalプラン 専用BOX1台ごと 18,700円");
    let c = rental(Professional, d(2025, 1, 15));
    assert_eq!(
        total(&fees(&c, &Event::Month, d(2026, 1, 31)).unwrap()),
        18_700
    );
}

#[test]
fn s04_option_adds_2200_a_month() {
    assert_cited("24時間訪問修理オプション 専用BOX1台ごと 2,200円");
    let c = Contract::open(terms(ContractKind::Rental, Standard, true, d(2025, 1, 15)));
    let got = fees(&c, &Event::Month, d(2025, 3, 1)).unwrap();
    assert_eq!(
        lines(&got),
        [
            (11_000, C::RentalMonthly(Standard)),
            (2_200, C::RepairOptionMonthly)
        ]
    );
}

#[test]
fn s05_first_and_last_month_billed_whole() {
    assert_cited("model: whole months, no daily rate");
    let c = rental(Light, d(2025, 1, 31)).cancel(d(2025, 3, 1)).unwrap();
    assert_eq!(
        total(&fees(&c, &Event::Month, d(2025, 1, 31)).unwrap()),
        7_150
    );
    assert_eq!(
        total(&fees(&c, &Event::Month, d(2025, 3, 1)).unwrap()),
        7_150
    );
}

// ── 料金 › 1. 利用料金 (purchase) ────────────────────────────────────────────
#[test]
fn s06_purchase_light_with_option() {
    assert_cited("Lightプラン 473,000円 363,000円");
    let c = purchase(Light, true, d(2025, 4, 1));
    let got = fees(&c, &Event::Start, d(2025, 4, 1)).unwrap();
    assert_eq!(
        lines(&got),
        [
            (473_000, C::PurchasePrice(Light)),
            (4_950, C::BasicWork),
            (11_000, C::DeviceWork)
        ]
    );
    let light_without = fees(
        &purchase(Light, false, d(2025, 4, 1)),
        &Event::Start,
        d(2025, 4, 1),
    );
    assert_eq!(light_without.unwrap()[0].amount, Yen(363_000));
}

#[test]
fn s07_purchase_standard() {
    assert_cited("Standardプラン 671,000円 561,000円");
    let with = fees(
        &purchase(Standard, true, d(2025, 4, 2)),
        &Event::Start,
        d(2025, 4, 2),
    );
    let without = fees(
        &purchase(Standard, false, d(2025, 4, 2)),
        &Event::Start,
        d(2025, 4, 2),
    );
    assert_eq!(
        (with.unwrap()[0].amount, without.unwrap()[0].amount),
        (Yen(671_000), Yen(561_000))
    );
}

#[test]
fn s08_purchase_professional() {
    assert_cited("Professionalプラン 1,067,000円 957,000円");
    let with = fees(
        &purchase(Professional, true, d(2025, 4, 3)),
        &Event::Start,
        d(2025, 4, 3),
    );
    let without = fees(
        &purchase(Professional, false, d(2025, 4, 3)),
        &Event::Start,
        d(2025, 4, 3),
    );
    assert_eq!(with.unwrap()[0].amount, Yen(1_067_000));
    assert_eq!(without.unwrap()[0].amount, Yen(957_000));
}

#[test]
fn s09_purchase_has_no_monthly_fee() {
    assert_cited("月額利用料はかかりません");
    let c = purchase(Standard, true, d(2025, 1, 15));
    let got = fees(&c, &Event::Month, d(2027, 8, 1)).unwrap();
    assert_eq!(lines(&got), [(0, C::PurchaseNoMonthly)]);
}

#[test]
fn s10_purchase_month_60_is_served() {
    assert_cited("売切タイプの利用期間は、利用開始月から60カ月となります。");
    let c = purchase(Light, false, d(2025, 1, 15));
    assert_eq!(c.service_month(d(2029, 12, 31)), 60);
    assert!(c.in_force_on(d(2029, 12, 31)));
    assert!(fees(&c, &Event::Month, d(2029, 12, 1)).is_ok());
    assert_eq!(
        c.box_profile(d(2029, 12, 31)).unwrap().tier,
        GatewayTier::Light
    );
}

#[test]
fn s11_purchase_month_61_is_over() {
    assert_cited("開始月から60カ月間を経過した以降は");
    let c = purchase(Light, false, d(2025, 1, 15));
    assert_eq!(c.licence_end(), Some(d(2030, 1, 1)));
    assert!(!c.in_force_on(d(2030, 1, 1)));
    assert!(c.box_profile(d(2030, 1, 1)).is_none());
    let err = fees(&c, &Event::Month, d(2030, 1, 1)).unwrap_err();
    assert_eq!(
        err,
        Refusal::Ended {
            ended: d(2030, 1, 1),
            clause: C::LicenceEnd
        }
    );
}

#[test]
fn s12_licence_end_event() {
    assert_cited("契約満了 (機器のライセンス切れ)");
    let c = purchase(Professional, true, d(2025, 1, 15));
    assert_eq!(
        lines(&fees(&c, &Event::LicenceEnd, d(2030, 1, 1)).unwrap()),
        [(0, C::LicenceEnd)]
    );
    let early = fees(&c, &Event::LicenceEnd, d(2029, 12, 31)).unwrap_err();
    assert!(matches!(
        early,
        Refusal::LicenceNotEnded {
            clause: C::LicenceEnd,
            ..
        }
    ));
    let on_rental = fees(
        &rental(Light, d(2025, 1, 15)),
        &Event::LicenceEnd,
        d(2030, 1, 1),
    );
    assert!(matches!(on_rental, Err(Refusal::NoLicenceTerm { .. })));
}

#[test]
fn s13_purchase_early_end_no_fee_no_refund() {
    assert_cited("解約金は不要ですが、お支払いいただいた料金の払い戻しはいたしません");
    let c = purchase(Standard, false, d(2025, 1, 15));
    let got = fees(&c, &Event::Cancellation, d(2027, 6, 30)).unwrap();
    assert_eq!(lines(&got), [(0, C::PurchaseCancel)]);
    let after = c.cancel(d(2027, 6, 30)).unwrap();
    assert!(fees(&after, &Event::Month, d(2027, 7, 1)).is_err());
}

#[test]
fn s14_purchase_cancel_after_licence_is_refused() {
    assert_cited("サービス提供終了となります");
    let c = purchase(Standard, false, d(2025, 1, 15));
    assert!(c.cancel(d(2029, 12, 31)).is_ok());
    let err = c.cancel(d(2030, 1, 1)).unwrap_err();
    assert_eq!(err.clause(), C::LicenceEnd);
}

#[test]
fn s15_purchase_cannot_change_plan() {
    assert_cited("売切タイプ：不可能");
    let c = purchase(Light, false, d(2025, 1, 15));
    let err = c
        .change_plan(Standard, Work::provider("j2"), d(2025, 6, 1))
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::PurchasePlanChange {
            clause: C::PurchaseNoPlanChange
        }
    );
    let event = Event::PlanChange {
        to: Standard,
        work: Work::provider("j2"),
    };
    assert_eq!(fees(&c, &event, d(2025, 6, 1)).unwrap_err(), err);
    assert!(err.to_string().contains("売切タイプ：不可能"));
}

#[test]
fn s16_purchase_cannot_change_option() {
    assert_cited("オプション変更も行うことはできません");
    let c = purchase(Light, true, d(2025, 1, 15));
    let err = c.change_option(false, d(2025, 2, 1)).unwrap_err();
    assert_eq!(err.clause(), C::PurchaseNoOptionChange);
    let via_fees = fees(
        &c,
        &Event::OptionChange { repair_24h: false },
        d(2025, 2, 1),
    );
    assert_eq!(via_fees.unwrap_err(), err);
}

// ── 料金 › 2. 初期費用 ─────────────────────────────────────────────────────────
#[test]
fn s17_rental_start_work_fees() {
    assert_cited("基本工事費 1工事ごと 4,950円");
    let c = rental(Standard, d(2025, 1, 15));
    let got = fees(&c, &Event::Start, d(2025, 1, 15)).unwrap();
    assert_eq!(
        lines(&got),
        [(4_950, C::BasicWork), (11_000, C::DeviceWork)]
    );
}

#[test]
fn s18_light_self_install_is_free() {
    assert_cited("LightプランとStandardプランについては");
    let mut t = terms(ContractKind::Rental, Light, false, d(2025, 1, 15));
    t.work = Work::by_customer("j1");
    let got = fees(&Contract::open(t), &Event::Start, d(2025, 1, 15)).unwrap();
    assert_eq!(
        lines(&got),
        [(0, C::SelfInstallWaiver), (0, C::SelfInstallWaiver)]
    );
}

#[test]
fn s19_standard_purchase_self_install_is_free() {
    assert_cited("お客さまご自身で機器の設置、設定をされる場合は、初期費用はかかりません");
    let mut t = terms(ContractKind::Purchase, Standard, false, d(2025, 1, 15));
    t.work = Work::by_customer("j1");
    let got = fees(&Contract::open(t), &Event::Start, d(2025, 1, 15)).unwrap();
    assert_eq!(total(&got), 561_000);
}

#[test]
fn s20_professional_self_install_still_pays() {
    assert_cited("LightプランとStandardプランについては、お客さまご自身で");
    // Choice: the waiver names Light and Standard only.
    let mut t = terms(ContractKind::Rental, Professional, false, d(2025, 1, 15));
    t.work = Work::by_customer("j1");
    let got = fees(&Contract::open(t), &Event::Start, d(2025, 1, 15)).unwrap();
    assert_eq!(total(&got), 15_950);
}

#[test]
fn s21_work_fees_are_common_to_both_types() {
    assert_cited("工事費 (レンタルタイプ、売切タイプ共通)");
    let got = fees(
        &purchase(Light, false, d(2025, 1, 15)),
        &Event::Start,
        d(2025, 1, 15),
    )
    .unwrap();
    assert_eq!(total(&got), 363_000 + 4_950 + 11_000);
}

#[test]
fn s22_one_job_two_boxes_one_basic_fee() {
    assert_cited("機器工事費 専用BOX1台ごと 11,000円");
    let a = rental(Light, d(2025, 5, 12));
    let mut t = terms(ContractKind::Rental, Standard, false, d(2025, 5, 12));
    t.box_id = "b2".into();
    let b = Contract::open(t);
    let s = statement("c1", &[a, b], ym(2025, 5)).unwrap();
    let work: u64 = s
        .lines
        .iter()
        .filter(|l| matches!(l.charge.item, Item::BasicWork { .. } | Item::DeviceWork))
        .map(|l| l.charge.amount.0)
        .sum();
    assert_eq!(work, 4_950 + 2 * 11_000);
    assert_eq!(s.total.0, work + 7_150 + 11_000);
}

// ── 料金 › 3. 機器再生費用 (解約金) ──────────────────────────────────────────
#[test]
fn s23_cancel_in_month_3_is_free() {
    assert_cited("その月を含む3カ月の間に解約された場合は、機器再生費用 (解約金) はいただきません");
    let c = rental(Light, d(2025, 1, 15));
    let got = fees(&c, &Event::Cancellation, d(2025, 3, 31)).unwrap();
    assert_eq!(lines(&got), [(0, C::RentalCancelFirstMonths)]);
}

#[test]
fn s24_cancel_in_month_4_pays() {
    assert_cited("4カ月め以降、24カ月以内に解約された場合、16,500円");
    let c = rental(Light, d(2025, 1, 15));
    let got = fees(&c, &Event::Cancellation, d(2025, 4, 1)).unwrap();
    assert_eq!(lines(&got), [(16_500, C::RentalCancelFee)]);
    assert_eq!(got[0].tax, TaxBasis::NotStated);
}

#[test]
fn s25_cancel_in_month_24_pays() {
    assert_cited("24カ月以内に解約された場合");
    let c = rental(Professional, d(2025, 1, 15));
    assert_eq!(c.service_month(d(2026, 12, 31)), 24);
    assert_eq!(
        total(&fees(&c, &Event::Cancellation, d(2026, 12, 31)).unwrap()),
        16_500
    );
}

#[test]
fn s26_cancel_in_month_25_is_free() {
    assert_cited("本サービスご利用開始月の4カ月め以降、24カ月以内に");
    let c = rental(Professional, d(2025, 1, 15));
    let got = fees(&c, &Event::Cancellation, d(2027, 1, 1)).unwrap();
    assert_eq!(lines(&got), [(0, C::RentalCancelFee)]);
}

#[test]
fn s27_cancel_on_the_start_day_is_free() {
    assert_cited("本サービスの提供を開始した日の属する月から");
    let c = rental(Standard, d(2025, 1, 31));
    assert_eq!(
        total(&fees(&c, &Event::Cancellation, d(2025, 1, 31)).unwrap()),
        0
    );
    // Month 3 of a start on the 31st of January is March, whatever the day.
    assert_eq!(
        total(&fees(&c, &Event::Cancellation, d(2025, 3, 31)).unwrap()),
        0
    );
    assert_eq!(
        total(&fees(&c, &Event::Cancellation, d(2025, 4, 1)).unwrap()),
        16_500
    );
}
