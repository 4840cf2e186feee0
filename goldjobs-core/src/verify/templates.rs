//! Notification texts for voters (`GOLDJOBS_LOCALE`: `zh-CN`, the default, or `en`).

use crate::model::{Notification, VoterNotice};
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

    /// `zh-CN` or `en` (letter case and `_` for `-` are accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().replace('_', "-").to_ascii_lowercase().as_str() {
            "zh-cn" => Ok(Locale::ZhCn),
            "en" => Ok(Locale::En),
            _ => Err(crate::Error::invalid(format!(
                "locale {s:?}: expected zh-CN or en"
            ))),
        }
    }
}

/// Render the push notification telling a voter the result.
///
/// The data payload (FCM wants string values) is
/// `{type: "prediction_verified", prediction_id, is_correct: "true" | "false"}`.
pub fn render_notice(locale: Locale, notice: &VoterNotice) -> Notification {
    let (title, body) = match locale {
        Locale::ZhCn => (
            "预测验证完成".to_owned(),
            format!(
                "预测结果已揭晓：{} - 你的选择{}是{}的！",
                notice.question,
                notice.selected_option,
                if notice.is_correct {
                    "正确"
                } else {
                    "错误"
                }
            ),
        ),
        Locale::En => (
            "Prediction verified".to_owned(),
            format!(
                "Result is in: {} - your choice {} was {}!",
                notice.question,
                notice.selected_option,
                if notice.is_correct { "right" } else { "wrong" }
            ),
        ),
    };
    let mut data = BTreeMap::new();
    data.insert("type".to_owned(), "prediction_verified".to_owned());
    data.insert("prediction_id".to_owned(), notice.prediction_id.clone());
    data.insert("is_correct".to_owned(), notice.is_correct.to_string());
    Notification {
        user_id: notice.user_id.clone(),
        title,
        body,
        data,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn notice(correct: bool) -> VoterNotice {
        VoterNotice {
            user_id: "u1".into(),
            prediction_id: "p1".into(),
            question: "黄金本周会涨破2700吗？".into(),
            selected_option: "A".into(),
            is_correct: correct,
        }
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
