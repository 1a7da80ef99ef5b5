;;; e2e.el --- End-to-end check of the real conductor binary under Emacs's eglot  -*- lexical-binding: t -*-

;;; Commentary:
;; Run by tests/editors/run-emacs.sh as `emacs --batch -Q -l e2e.el'.  Environment:
;;   CONDUCTOR_E2E_BIN      the conductor binary
;;   CONDUCTOR_E2E_FILE     the Rust file (inside a git-initialised workspace) to edit
;;   CONDUCTOR_E2E_RESULTS  file to append `ok ...' / `not ok ...' lines to
;;   CONDUCTOR_E2E_RUN_FILE a Rust file holding `41', which the scripted run turns into `42'
;;   CONDUCTOR_E2E_MODEL_URL the scripted model server's base URL
;; Emacs 28 has no Rust mode, so a minimal one is defined here: eglot only needs a major mode
;; to attach to, and derives the language id `rust' from its name.  Every wait is bounded.

;;; Code:

;; Debian installs eglot (and the newer project/xref/seq it needs) under site-lisp/elpa, which
;; `-Q' does not load.
(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (when (file-directory-p dir)
    (add-to-list 'load-path dir)))
(require 'eglot)
(require 'cl-lib)

(defvar e2e-bin (getenv "CONDUCTOR_E2E_BIN"))
(defvar e2e-file (getenv "CONDUCTOR_E2E_FILE"))
(defvar e2e-results (getenv "CONDUCTOR_E2E_RESULTS"))
(defvar e2e-failures 0)
(defconst e2e-timeout 20 "Seconds any wait may take.")

(define-derived-mode rust-mode prog-mode "Rust"
  "A stand-in Rust mode: eglot needs a major mode, not syntax highlighting.")
(add-to-list 'auto-mode-alist '("\\.rs\\'" . rust-mode))
(add-to-list 'eglot-server-programs `(rust-mode . (,e2e-bin "lsp")))
(defvar e2e-run-file (getenv "CONDUCTOR_E2E_RUN_FILE"))
(defvar e2e-model-url (getenv "CONDUCTOR_E2E_MODEL_URL"))
;; The agents talk to the scripted model server, one attempt per request. The tester and the
;; model review have their own tests in the server's suite; this one is about the editor.
(setq-default eglot-workspace-configuration
              `(:conductor (:model (:base_url ,(or e2e-model-url "") :model "test-model"
                                             :max_attempts 1)
                                   :tester (:enabled :json-false)
                                   :review (:model :json-false))))
;; A run's edit arrives as `workspace/applyEdit'; in batch mode nobody can answer a prompt.
(setq eglot-confirm-server-initiated-edits nil)
(setq eglot-sync-connect e2e-timeout
      eglot-connect-timeout e2e-timeout
      eglot-autoshutdown nil
      eglot-events-buffer-size 0)

(defun e2e-record (line)
  "Append LINE to the results file and echo it."
  (with-temp-buffer
    (insert line "\n")
    (append-to-file (point-min) (point-max) e2e-results))
  (message "[emacs] %s" line))

(defmacro e2e-check (name &rest body)
  "Run BODY as the check NAME; an error inside it fails the check."
  (declare (indent 1))
  `(condition-case err
       (progn ,@body (e2e-record (concat "ok emacs: " ,name)) t)
     (error
      (setq e2e-failures (1+ e2e-failures))
      (e2e-record (format "not ok emacs: %s: %s" ,name
                          (replace-regexp-in-string "\n" " | " (error-message-string err))))
      nil)))

(defun e2e-wait (predicate what)
  "Pump process output until PREDICATE holds; fail naming WHAT after `e2e-timeout' seconds."
  (let ((deadline (+ (float-time) e2e-timeout)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (unless (funcall predicate)
      (error "%s did not happen within %d s" what e2e-timeout))))

(defun e2e-server-text (server)
  "Flush pending changes to SERVER, then return its `conductor/debugDocument' result."
  (eglot--signal-textDocument/didChange)
  (jsonrpc-request server :conductor/debugDocument
                   (list :textDocument (eglot--TextDocumentIdentifier))
                   :timeout e2e-timeout))

(defun e2e-expect-in-sync (server what)
  "Fail unless SERVER's text of the current buffer is the buffer's text, after WHAT."
  (let* ((result (e2e-server-text server))
         (theirs (plist-get result :text))
         (ours (buffer-substring-no-properties (point-min) (point-max))))
    (unless (equal theirs ours)
      (let ((i (or (compare-strings theirs nil nil ours nil nil) 0)))
        (error "%s: server text differs from the buffer at character %s: server %S, editor %S"
               what i
               (substring theirs (max 0 (1- (abs i))) (min (length theirs) (+ (abs i) 20)))
               (substring ours (max 0 (1- (abs i))) (min (length ours) (+ (abs i) 20))))))
    (unless (equal (plist-get result :version) eglot--versioned-identifier)
      (error "%s: server has version %s, editor sent %s"
             what (plist-get result :version) eglot--versioned-identifier))))

(defvar e2e-server nil)

(defvar e2e-messages nil "Every `window/showMessage' text the server sent.")
(cl-defmethod eglot-handle-notification :before
  (_server (_method (eql window/showMessage)) &key _type message)
  (push message e2e-messages))

(find-file e2e-file)

(e2e-check "eglot starts the server for a Rust buffer and initializes"
  (unless (eq major-mode 'rust-mode) (error "major mode is %s" major-mode))
  (apply #'eglot (eglot--guess-contact))
  (e2e-wait (lambda () (setq e2e-server (eglot-current-server))) "connecting")
  (e2e-wait (lambda () (eglot--capabilities e2e-server)) "initialization"))

(when e2e-server
  (e2e-check "negotiated capabilities: UTF-16 (eglot offers no encoding), incremental sync"
    (let* ((caps (eglot--capabilities e2e-server))
           (sync (plist-get caps :textDocumentSync)))
      (unless (equal (plist-get caps :positionEncoding) "utf-16")
        (error "positionEncoding is %S" (plist-get caps :positionEncoding)))
      (unless (equal (plist-get sync :change) 2)
        (error "textDocumentSync.change is %S" (plist-get sync :change)))))

  (e2e-check "the server sees the opened text"
    (e2e-expect-in-sync e2e-server "after didOpen"))

  (e2e-check "non-ASCII insertions and deletions keep the server in sync"
    (goto-char (point-min))
    (insert "// é中😀 naïve\n")
    (e2e-expect-in-sync e2e-server "after inserting a line")
    (goto-char (point-min))
    (forward-char 6)                    ; after the emoji
    (insert "😀é")
    (e2e-expect-in-sync e2e-server "after inserting after an emoji")
    (goto-char (point-min))
    (forward-char 4)
    (delete-char 2)                     ; 中 and the first 😀
    (e2e-expect-in-sync e2e-server "after deleting 中😀")
    (goto-char (line-end-position))
    (delete-char 1)                     ; join with the next line
    (insert "\n𝄞")
    (e2e-expect-in-sync e2e-server "after joining and splitting lines"))

  (e2e-check "200 seeded random edits keep the server in sync"
    (let ((pieces ["a" "é" "中" "😀" " " "\n" "𝄞" "naïve" "\n\n"])
          (seed 20261124))
      (cl-flet ((next (n) (setq seed (mod (+ (* seed 1103515245) 12345) 2147483648))
                      (1+ (mod seed n))))
        (dotimes (round 4)
          (dotimes (_ 50)
            (goto-char (+ (point-min) (1- (next (1+ (buffer-size))))))
            (if (and (= (next 3) 1) (< (point) (point-max)))
                (delete-char (min (next 3) (- (point-max) (point))))
              (insert (aref pieces (1- (next (length pieces)))))))
          (e2e-expect-in-sync e2e-server (format "after round %d" (1+ round)))))))

  (e2e-check "undo keeps the server in sync"
    (buffer-enable-undo)
    (undo-boundary)
    (goto-char (point-min))
    (insert "let s = \"é中😀\";\n")
    (undo-boundary)
    (primitive-undo 1 buffer-undo-list)
    (e2e-expect-in-sync e2e-server "after undo"))

  (e2e-check "the start-up configuration raises no configuration problem"
    (e2e-expect-in-sync e2e-server "after start-up")
    (dolist (message e2e-messages)
      (when (string-match-p "configuration problem" message)
        (error "the server reported: %s" message))))

  (let* ((caps (eglot--capabilities e2e-server))
         (commands (append (plist-get (plist-get caps :executeCommandProvider) :commands) nil)))
    (if (not (member "conductor.orchestrate" commands))
        (e2e-record "skip emacs: a run's edit is applied to the buffer: the server does not announce conductor.orchestrate")
      (e2e-check "a run (conductor.orchestrate) applies its edit to the buffer"
        (find-file e2e-run-file)
        (unless (eq (eglot-current-server) e2e-server)
          (error "the run file is not managed by the same server"))
        (let* ((before (buffer-string))
               (answer (jsonrpc-request
                        e2e-server :workspace/executeCommand
                        (list :command "conductor.orchestrate"
                              :arguments
                              (vector (list :uri (eglot--path-to-uri e2e-run-file)
                                            :range (list :start (list :line 0 :character 0)
                                                         :end (list :line 3 :character 0))
                                            :goal "return 42")))
                        :timeout e2e-timeout)))
          (unless (stringp (plist-get answer :runId))
            (error "no runId in %S" answer))
          (let ((e2e-timeout 60))
            (e2e-wait (lambda () (string-match-p "    42" (buffer-string)))
                      "the run's edit arriving in the buffer"))
          (unless (equal (buffer-string) (replace-regexp-in-string "    41" "    42" before t t))
            (error "the buffer is not the expected change: %S" (buffer-string)))
          (e2e-expect-in-sync e2e-server "after the run"))
        (switch-to-buffer (find-buffer-visiting e2e-file)))))

  (e2e-check "a bad value in eglot-workspace-configuration is reported by key"
    (setq-default eglot-workspace-configuration '(:conductor (:log (:level "loud"))))
    (eglot-signal-didChangeConfiguration e2e-server)
    (e2e-wait (lambda () (cl-some (lambda (m) (string-match-p "log\\.level" m)) e2e-messages))
              "a window/showMessage naming log.level")
    (setq-default eglot-workspace-configuration '(:conductor (:log (:level "info"))))
    (eglot-signal-didChangeConfiguration e2e-server)
    (e2e-expect-in-sync e2e-server "after a bad setting"))

  ;; Not `eglot-shutdown': its jsonrpc.el deletes (SIGKILLs) the process right after `exit',
  ;; which would hide whether the server exits by itself.
  (e2e-check "shutdown is answered and exit ends the server with status 0"
    (let ((process (jsonrpc--process e2e-server)))
      (setf (eglot--shutdown-requested e2e-server) t)
      (jsonrpc-request e2e-server :shutdown nil :timeout e2e-timeout)
      (jsonrpc-notify e2e-server :exit nil)
      (e2e-wait (lambda () (not (process-live-p process))) "the server process exiting")
      (unless (eq (process-exit-status process) 0)
        (error "the server exited with status %s after shutdown and exit"
               (process-exit-status process))))))

(kill-emacs (if (> e2e-failures 0) 1 0))

;;; e2e.el ends here
