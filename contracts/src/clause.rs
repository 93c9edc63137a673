//! The clauses every charge and refusal comes from.
//!
//! A [`Clause`] is either a sentence of the service terms (the seed,
//! `../shared/seed/service-description-ja.txt`, quoted verbatim but for whitespace: the seed's
//! tables are tab-separated, the quotes use one space) or one of our own model rules, which say
//! what the seed leaves open. [`Clause::is_seed`] tells them apart; `docs/CONTRACTS.md` lists both.

use crate::plans::Plan;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a charge or a refusal comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clause {
    // 料金 › 1. 利用料金
    /// The rental price table's row for a plan.
    RentalMonthly(Plan),
    /// The rental price table's head: the plan names there are.
    PlanNames,
    /// The 24 h repair option's monthly fee.
    RepairOptionMonthly,
    /// The purchase price table's row for a plan (with / without the option).
    PurchasePrice(Plan),
    /// The purchase price is paid once, at contract.
    PurchaseOneOff,
    /// No monthly fee on a purchase, no refund on an early end.
    PurchaseNoMonthly,
    /// A purchase runs 60 months from its start month.
    PurchaseTerm,
    /// After 60 months the licence ends and so does the service.
    LicenceEnd,
    // 料金 › 2. 初期費用
    BasicWork,
    DeviceWork,
    SelfInstallWaiver,
    // 料金 › 3. 機器再生費用 (解約金)
    RentalCancelFee,
    RentalCancelFirstMonths,
    PurchaseCancel,
    // 提供条件等 › プラン変更
    RentalPlanChange,
    UpgradeWaiver,
    DowngradeFee,
    UpDownDefinition,
    ChangeInitialFees,
    ChangeCancelWindow,
    ChangeFeeNextMonth,
    ChangeCancelEvenEarly,
    PurchaseNoPlanChange,
    PurchaseNoOptionChange,
    // 提供条件等 (rental ↔ purchase)
    RentalToPurchase,
    PurchaseToRental,
    // サービスの概要
    VisitQuota,
    RepairDaytime,
    RepairOption,
    // Our own rules where the seed is silent.
    ModelDatesInOrder,
    ModelEnded,
    ModelWholeMonths,
    ModelOptionChange,
    ModelNothingChanged,
    ModelSwitchKinds,
    ModelOneCustomer,
}

impl Clause {
    /// Every clause, for listings and for the test that checks each quote against the seed.
    pub fn all() -> Vec<Clause> {
        use Clause::*;
        let mut all = Vec::new();
        for plan in Plan::ALL {
            all.push(RentalMonthly(plan));
            all.push(PurchasePrice(plan));
        }
        all.extend([
            PlanNames,
            RepairOptionMonthly,
            PurchaseOneOff,
            PurchaseNoMonthly,
            PurchaseTerm,
            LicenceEnd,
            BasicWork,
            DeviceWork,
            SelfInstallWaiver,
            RentalCancelFee,
            RentalCancelFirstMonths,
            PurchaseCancel,
            RentalPlanChange,
            UpgradeWaiver,
            DowngradeFee,
            UpDownDefinition,
            ChangeInitialFees,
            ChangeCancelWindow,
            ChangeFeeNextMonth,
            ChangeCancelEvenEarly,
            PurchaseNoPlanChange,
            PurchaseNoOptionChange,
            RentalToPurchase,
            PurchaseToRental,
            VisitQuota,
            RepairDaytime,
            RepairOption,
            ModelDatesInOrder,
            ModelEnded,
            ModelWholeMonths,
            ModelOptionChange,
            ModelNothingChanged,
            ModelSwitchKinds,
            ModelOneCustomer,
        ]);
        all
    }

    /// Whether this is a sentence of the seed (else one of our model rules).
    pub fn is_seed(self) -> bool {
        !self.section().starts_with("model")
    }

    /// The seed's section (or `model` for our own rules).
    pub fn section(self) -> &'static str {
        use Clause::*;
        match self {
            RentalMonthly(_) | PlanNames => "料金 › 1. 利用料金 › レンタルタイプ",
            RepairOptionMonthly => "料金 › 1. 利用料金 › オプションサービス",
            PurchasePrice(_) | PurchaseOneOff | PurchaseNoMonthly | PurchaseTerm | LicenceEnd => {
                "料金 › 1. 利用料金 › 売切タイプ"
            }
            BasicWork | DeviceWork | SelfInstallWaiver => "料金 › 2. 初期費用",
            RentalCancelFee | RentalCancelFirstMonths => {
                "料金 › 3. 機器再生費用 (解約金) › レンタルタイプ"
            }
            PurchaseCancel => "料金 › 3. 機器再生費用 (解約金) › 売切タイプ",
            RentalPlanChange
            | UpgradeWaiver
            | DowngradeFee
            | UpDownDefinition
            | ChangeInitialFees
            | ChangeCancelWindow
            | ChangeFeeNextMonth
            | ChangeCancelEvenEarly => "提供条件等 › プラン変更 › レンタルタイプ",
            PurchaseNoPlanChange | PurchaseNoOptionChange => "提供条件等 › プラン変更 › 売切タイプ",
            RentalToPurchase | PurchaseToRental => "提供条件等 › タイプの変更",
            VisitQuota => "サービスの概要 › 訪問サポート",
            RepairDaytime | RepairOption => "サービスの概要 › 故障対応",
            ModelDatesInOrder | ModelEnded | ModelWholeMonths | ModelOptionChange
            | ModelNothingChanged | ModelSwitchKinds | ModelOneCustomer => "model",
        }
    }

    /// The seed's sentence (or, for a model rule, the rule in English).
    pub fn quote(self) -> &'static str {
        use Clause::*;
        use Plan::*;
        match self {
            RentalMonthly(Light) => "Lightプラン 専用BOX1台ごと 7,150円",
            RentalMonthly(Standard) => "Standardプラン 専用BOX1台ごと 11,000円",
            RentalMonthly(Professional) => "Professionalプラン 専用BOX1台ごと 18,700円",
            PlanNames => "月額利用料 (税込) プラン名 単位 金額",
            RepairOptionMonthly => "24時間訪問修理オプション 専用BOX1台ごと 2,200円",
            PurchasePrice(Light) => "Lightプラン 473,000円 363,000円",
            PurchasePrice(Standard) => "Standardプラン 671,000円 561,000円",
            PurchasePrice(Professional) => "Professionalプラン 1,067,000円 957,000円",
            PurchaseOneOff => "ご契約時に一括でお支払いいただく金額です。",
            PurchaseNoMonthly => "月額利用料はかかりません (途中解約による払い戻しはありません)。",
            PurchaseTerm => "売切タイプの利用期間は、利用開始月から60カ月となります。",
            LicenceEnd => {
                "開始月から60カ月間を経過した以降は、契約満了 (機器のライセンス切れ) のため\
                 サービス提供終了となります。"
            }
            BasicWork => "基本工事費 1工事ごと 4,950円",
            DeviceWork => "機器工事費 専用BOX1台ごと 11,000円",
            SelfInstallWaiver => {
                "LightプランとStandardプランについては、お客さまご自身で機器の設置、設定を\
                 される場合は、初期費用はかかりません。"
            }
            RentalCancelFee => {
                "本サービスご利用開始月の4カ月め以降、24カ月以内に解約された場合、16,500円の\
                 機器再生費用 (解約金) をお支払いいただきます。"
            }
            RentalCancelFirstMonths => {
                "本サービスの提供を開始した日の属する月からその月を含む3カ月の間に解約された\
                 場合は、機器再生費用 (解約金) はいただきません。"
            }
            PurchaseCancel => {
                "ご利用開始月から60カ月以前にご解約された場合、解約金は不要ですが、お支払い\
                 いただいた料金の払い戻しはいたしません。"
            }
            RentalPlanChange => "レンタルタイプ：可能",
            UpgradeWaiver => {
                "本サービスご利用開始から24カ月以内にアップグレードにあたるプラン変更をする\
                 場合、機器再生費用 (解約金) は不要となります。"
            }
            DowngradeFee => {
                "ダウングレードにあたるプラン変更をする場合、機器再生費用 (解約金) をお支払い\
                 いただけますが、本サービスの提供を開始した日の属する月からその月を含む3カ月\
                 の間にプラン変更した場合は、機器再生費用 (解約金) はいただきません。"
            }
            UpDownDefinition => {
                "アップグレードとは、月額利用料の安いプランから高いプランへの変更をさし、\
                 ダウングレードとは、月額利用料の高いプランから安いプランへの変更をさします。"
            }
            ChangeInitialFees => "プラン変更の際は再度初期費用がかかります。",
            ChangeCancelWindow => {
                "プラン変更を行った月から24カ月以内に解約された場合に機器再生費用 (解約金) が\
                 必要となり"
            }
            ChangeFeeNextMonth => {
                "契約変更日の翌月から変更後プランの月額利用料をお支払いいただけます。"
            }
            ChangeCancelEvenEarly => {
                "プラン変更後の解約については、変更後プラン利用開始月から3カ月以内であっても\
                 機器再生費用 (解約金) をお支払いいただけます。"
            }
            PurchaseNoPlanChange => "売切タイプ：不可能",
            PurchaseNoOptionChange => {
                "「24時間訪問修理オプションあり」から「24時間訪問修理オプションなし」に変更する\
                 などのオプション変更も行うことはできません。"
            }
            RentalToPurchase => "レンタルタイプを解約し、改めて売切タイプの新規契約が必要です。",
            PurchaseToRental => "売切タイプを解約し、改めてレンタルタイプの新規契約が必要です。",
            VisitQuota => "月1回 Lightプラン：1台、Standardプラン：1台、Professionalプラン3台まで",
            RepairDaytime => "9：00～17：00（年中無休）で訪問修理に伺います。",
            RepairOption => "24時間訪問修理オプションサービスもご用意しております。",
            ModelDatesInOrder => {
                "events on a contract are dated in order: none before its start, none before \
                 the last event already recorded"
            }
            ModelEnded => {
                "a contract that has ended (cancelled, or its licence over) takes no \
                 further change, cancellation or monthly fee"
            }
            ModelWholeMonths => {
                "monthly fees are billed for whole calendar months, from the \
                 start month to the month of the end; the seed gives no daily rate"
            }
            ModelOptionChange => {
                "a rental box may add or drop the 24 h repair option; the \
                 change serves from its date, bills from the month after (as a plan change \
                 does) and costs nothing itself"
            }
            ModelNothingChanged => {
                "a change must change something: the same plan, or the \
                 option already in that state, is no change"
            }
            ModelSwitchKinds => {
                "a switch goes from rental to purchase or back, and the new \
                 contract starts no earlier than the old one ends"
            }
            ModelOneCustomer => "a statement is for one customer: every contract in it is theirs",
        }
    }
}

impl fmt::Display for Clause {
    /// `section: 「quote」` for seed clauses, `model: rule` for ours.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_seed() {
            write!(f, "{}: 「{}」", self.section(), self.quote())
        } else {
            write!(f, "model rule: {}", self.quote())
        }
    }
}
