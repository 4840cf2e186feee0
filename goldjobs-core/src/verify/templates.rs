//! Notification texts for voters (`GOLDJOBS_LOCALE`: `zh-CN`, the default, or `en`).

use crate::model::{NoticeKind, Notification, VoterNotice};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The language of notification texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Locale {
    /// Simplified Chinese (`zh-CN`), the default.
    #[default]
    ZhCn,
    /// English (`en`).
    En,
}

impl Locale {
    /// The configuration spelling: `zh-CN` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Locale {
    type Err = crate::Error;

    /// `zh-CN` (or `zh`) or `en`; letter case and `_` for `-` are accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().replace('_', "-").to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" => Ok(Locale::ZhCn),
            "en" => Ok(Locale::En),
            _ => Err(crate::Error::invalid(format!(
                "locale {s:?}: expected zh-CN or en"
            ))),
        }
    }
}

/// Render the push notification telling a voter the result, a corrected result or a void.
///
/// The data payload (FCM wants string values) is `{type, prediction_id, is_correct}` with
/// `type` = `prediction_verified`, `prediction_corrected` or `prediction_voided` and
/// `is_correct` = `"true"` | `"false"` (left out for a void).
pub fn render_notice(locale: Locale, notice: &VoterNotice) -> Notification {
    let q = &notice.question;
    let opt = &notice.selected_option;
    let reason = notice.reason.as_deref().unwrap_or_default();
    let (title, body) = match (locale, notice.kind) {
        (Locale::ZhCn, NoticeKind::Verified) => (
            "预测验证完成".to_owned(),
            format!(
                "预测结果已揭晓：{q} - 你的选择{opt}是{}的！",
                zh_right(notice.is_correct)
            ),
        ),
        (Locale::ZhCn, NoticeKind::Corrected) => (
            "预测结果已更正".to_owned(),
            format!(
                "预测结果已更正：{q} - 你的选择{opt}是{}的。",
                zh_right(notice.is_correct)
            ),
        ),
        (Locale::ZhCn, NoticeKind::Voided) if reason.is_empty() => (
            "预测已作废".to_owned(),
            format!("预测已作废：{q} - 本次预测不计入成绩。"),
        ),
        (Locale::ZhCn, NoticeKind::Voided) => (
            "预测已作废".to_owned(),
            format!("预测已作废：{q} - 本次预测不计入成绩。原因：{reason}"),
        ),
        (Locale::En, NoticeKind::Verified) => (
            "Prediction verified".to_owned(),
            format!(
                "Result is in: {q} - your choice {opt} was {}!",
                en_right(notice.is_correct)
            ),
        ),
        (Locale::En, NoticeKind::Corrected) => (
            "Result corrected".to_owned(),
            format!(
                "Result corrected: {q} - your choice {opt} was {}.",
                en_right(notice.is_correct)
            ),
        ),
        (Locale::En, NoticeKind::Voided) if reason.is_empty() => (
            "Prediction voided".to_owned(),
            format!("Prediction voided: {q} - it does not count."),
        ),
        (Locale::En, NoticeKind::Voided) => (
            "Prediction voided".to_owned(),
            format!("Prediction voided: {q} - it does not count. Reason: {reason}"),
        ),
    };
    let kind = match notice.kind {
        NoticeKind::Verified => "prediction_verified",
        NoticeKind::Corrected => "prediction_corrected",
        NoticeKind::Voided => "prediction_voided",
    };
    let mut data = BTreeMap::new();
    data.insert("type".to_owned(), kind.to_owned());
    data.insert("prediction_id".to_owned(), notice.prediction_id.clone());
    if notice.kind != NoticeKind::Voided {
        data.insert("is_correct".to_owned(), notice.is_correct.to_string());
    }
    Notification {
        user_id: notice.user_id.clone(),
        title,
        body,
        data,
        delivery_id: None,
    }
}

fn zh_right(correct: bool) -> &'static str {
    if correct {
        "正确"
    } else {
        "错误"
    }
}

fn en_right(correct: bool) -> &'static str {
    if correct {
        "right"
    } else {
        "wrong"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn notice(correct: bool) -> VoterNotice {
        VoterNotice::verified("u1", "p1", "黄金本周会涨破2700吗？", "A", correct)
    }

    #[test]
    fn corrected_and_voided_texts() {
        let mut n = notice(false);
        n.kind = NoticeKind::Corrected;
        let zh = render_notice(Locale::ZhCn, &n);
        assert_eq!(zh.title, "预测结果已更正");
        assert_eq!(
            zh.body,
            "预测结果已更正：黄金本周会涨破2700吗？ - 你的选择A是错误的。"
        );
        assert_eq!(zh.data["type"], "prediction_corrected");
        assert_eq!(zh.data["is_correct"], "false");
        n.question = "Gold above 2700?".into();
        n.is_correct = true;
        let en = render_notice(Locale::En, &n);
        assert_eq!(en.title, "Result corrected");
        assert_eq!(
            en.body,
            "Result corrected: Gold above 2700? - your choice A was right."
        );

        let mut v = notice(false);
        v.kind = NoticeKind::Voided;
        v.reason = Some("行情数据错误".into());
        let zh = render_notice(Locale::ZhCn, &v);
        assert_eq!(zh.title, "预测已作废");
        assert_eq!(
            zh.body,
            "预测已作废：黄金本周会涨破2700吗？ - 本次预测不计入成绩。原因：行情数据错误"
        );
        assert_eq!(zh.data["type"], "prediction_voided");
        assert!(!zh.data.contains_key("is_correct"));
        v.question = "Gold above 2700?".into();
        v.reason = Some("bad price feed".into());
        let en = render_notice(Locale::En, &v);
        assert_eq!(en.title, "Prediction voided");
        assert_eq!(
            en.body,
            "Prediction voided: Gold above 2700? - it does not count. Reason: bad price feed"
        );
        v.reason = None;
        assert_eq!(
            render_notice(Locale::En, &v).body,
            "Prediction voided: Gold above 2700? - it does not count."
        );
    }

    #[test]
    fn notices_of_old_rows_decode_as_verified() {
        let old = r#"{"user_id":"u1","prediction_id":"p1","question":"q","selected_option":"A","is_correct":true}"#;
        let n: VoterNotice = serde_json::from_str(old).unwrap();
        assert_eq!(n.kind, NoticeKind::Verified);
        assert_eq!(n.reason, None);
        // and a verified notice is written as before
        assert_eq!(serde_json::to_string(&n).unwrap(), old);
    }

    #[test]
    fn zh_cn_texts() {
        let n = render_notice(Locale::ZhCn, &notice(true));
        assert_eq!(n.user_id, "u1");
        assert_eq!(n.title, "预测验证完成");
        assert_eq!(
            n.body,
            "预测结果已揭晓：黄金本周会涨破2700吗？ - 你的选择A是正确的！"
        );
        let n = render_notice(Locale::ZhCn, &notice(false));
        assert_eq!(
            n.body,
            "预测结果已揭晓：黄金本周会涨破2700吗？ - 你的选择A是错误的！"
        );
        assert_eq!(n.data["is_correct"], "false");
    }

    #[test]
    fn en_texts_and_data() {
        let mut v = notice(true);
        v.question = "Gold above 2700?".into();
        let n = render_notice(Locale::En, &v);
        assert_eq!(n.title, "Prediction verified");
        assert_eq!(
            n.body,
            "Result is in: Gold above 2700? - your choice A was right!"
        );
        let expected: BTreeMap<String, String> = [
            ("type", "prediction_verified"),
            ("prediction_id", "p1"),
            ("is_correct", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(n.data, expected);
        v.is_correct = false;
        assert_eq!(
            render_notice(Locale::En, &v).body,
            "Result is in: Gold above 2700? - your choice A was wrong!"
        );
    }

    #[test]
    fn locale_parsing() {
        assert_eq!("zh-CN".parse::<Locale>().unwrap(), Locale::ZhCn);
        assert_eq!("zh_cn".parse::<Locale>().unwrap(), Locale::ZhCn);
        assert_eq!("en".parse::<Locale>().unwrap(), Locale::En);
        assert_eq!("EN".parse::<Locale>().unwrap(), Locale::En);
        assert!(matches!(
            "fr".parse::<Locale>(),
            Err(crate::Error::InvalidInput(_))
        ));
        assert_eq!(Locale::default(), Locale::ZhCn);
        assert_eq!(Locale::ZhCn.to_string(), "zh-CN");
    }
}
