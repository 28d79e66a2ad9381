"""Postal letters: the end of the fallback chain, for owners no e-mail address reaches.

A batch holds them beside its e-mails and they are reviewed the same way (four eyes). Once
approved they are printed (`printing`: one print-ready PDF for the print room, and a CSV of
the addresses), then marked posted on the day they left and, if the post brings one back,
returned (`marking`). The mailer never touches them.
"""
