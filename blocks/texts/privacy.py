"""Personal data: `privacy export` on the command line (docs/privacy.md)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "cli.privacy.usage": {"en": "usage: bot.py privacy export EMAIL",
                          "ja": "使い方: bot.py privacy export メールアドレス"},
    "cli.privacy.not_an_email": {
        "en": "{value!r} is not an email address: give the person's email, e.g. taro@example.co.jp",
        "ja": "{value!r} はメールアドレスではありません。本人のメールアドレスを指定してください(例: taro@example.co.jp)"},
}
