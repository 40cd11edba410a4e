"""Texts printed on a family's QR registration sheet, in the family's language.

These go on paper in the guardian's language, not the teacher's, so they are kept here
per language rather than in the staff UI's catalogs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SheetText:
    title: str
    steps: tuple[str, ...]
    landline: str
    absence_line: str  # {number}: the school's absence line, printed when it is set


SHEET = {
    "ja": SheetText(
        "連絡システム 登録のご案内",
        (
            "スマートフォンのカメラで右のQRコードを読み取ってください。",
            "保護者のお名前・メールアドレス・携帯電話番号を入力します。",
            "届いた確認コードを入力すると登録完了です。1人のお子さまにつき保護者3名まで登録できます。",
            "登録後は、欠席・遅刻・早退の連絡を電話またはWebで24時間できます。",
        ),
        "スマートフォンやメールをお持ちでない場合は、担任にお申し出ください（学校が代わりに登録します）。"
        "このQRコードは他の方に渡さないでください。",
        "欠席・遅刻・早退の連絡ダイヤル（24時間）: {number}",
    ),
    "en": SheetText(
        "How to register for the school contact system",
        (
            "Scan the QR code with your smartphone camera.",
            "Enter your name, email address and mobile number.",
            "Enter the code we send you to finish. Up to three guardians can register per child.",
            "Then you can report absences, late arrivals and early leaves by phone or web, "
            "24 hours a day.",
        ),
        "No smartphone or email? Tell the class teacher and the school will register you. "
        "Please keep this QR code to your family.",
        "Absence line (24 hours): {number}",
    ),
    "zh": SheetText(
        "学校联络系统登记说明",
        (
            "请用智能手机的相机扫描二维码。",
            "输入监护人的姓名、电子邮箱和手机号码。",
            "输入收到的验证码即完成登记。每个孩子最多可登记3名监护人。",
            "登记后,可24小时通过电话或网页联系请假、迟到和早退。",
        ),
        "没有智能手机或电子邮箱的家庭,请告诉班主任,学校会代为登记。请不要把此二维码交给他人。",
        "缺席、迟到、早退联络电话(24小时): {number}",
    ),
    "es": SheetText(
        "Cómo registrarse en el sistema de contacto escolar",
        (
            "Escanee el código QR con la cámara de su teléfono.",
            "Escriba su nombre, correo electrónico y número de móvil.",
            "Escriba el código que le enviamos para terminar. Hasta tres tutores por niño.",
            "Después podrá avisar de ausencias, llegadas tarde y salidas temprano por teléfono "
            "o por web, las 24 horas.",
        ),
        "¿No tiene smartphone ni correo? Dígaselo al tutor de clase y la escuela le registrará. "
        "No entregue este código QR a otras personas.",
        "Línea de ausencias (24 horas): {number}",
    ),
}


def sheet_text(lang: str) -> SheetText:
    return SHEET.get(lang, SHEET["ja"])
