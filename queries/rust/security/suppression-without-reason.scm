;; id = "rust/suppression-without-reason"
;; title = "Suppression without a reason"
;; cwe = ["CWE-710"]
;; severity = "low"
;; precision = "high"
;; message = "This `// conductor: allow(...)` comment gives no reason; say why the finding does not apply, so the next reader can check it."
;; explanation = """
;; A suppression silences a security finding for good. Without a reason nobody can tell later
;; whether it was a considered judgement or a way to make the warning go away, and nobody can
;; re-check it when the code around it changes.
;;
;; **Fix:** write the reason after the closing parenthesis:
;; `// conductor: allow(rust/static-mut) written once before any thread starts`.
;;
;; **Trade-off:** none; the suppression still applies while this finding is shown.
;; """
;; [examples]
;; vulnerable = [
;; '''
;; fn f() {
;;     // finding: next line
;;     // conductor: allow(rust/static-mut)
;;     static mut X: u8 = 0;
;; }
;; ''',
;; '''
;; // finding: next line
;; // conductor: allow(rust/weak-hash)
;; fn etag(body: &[u8]) -> String { format!("{:x}", md5::compute(body)) }
;; ''',
;; '''
;; // finding: next line
;; // conductor: allow(rust/static-mut) <reason>
;; static mut Z: u8 = 0;
;; ''',
;; ]
;; safe = [
;; '''
;; // conductor: allow(rust/static-mut) only written in main before threads start
;; static mut X: u8 = 0;
;; ''',
;; '''
;; fn f() {
;;     let digest = md5::compute(b"x"); // conductor: allow(rust/weak-hash) protocol requires MD5, not security-relevant
;; }
;; ''',
;; '''
;; // conductor: plan the retry logic here
;; fn g() {}
;; ''',
;; ]

; Reported by the engine itself, which reads suppression comments; this file carries the rule's
; metadata and examples and has no query patterns.
