//! The A2A protocol as far as ringmaster reads and writes it: the
//! `message/send` a fire sends, and the text of a response (to tell an
//! answer from an empty one).

/// An A2A `message/send` JSON-RPC body with one text part. `message_id` is the
/// idempotency key, so a receiver can drop a redelivered copy.
pub fn a2a_message(message_id: &str, text: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": message_id,
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": message_id,
                "parts": [{"kind": "text", "text": text}],
            }
        }
    })
    .to_string()
}

/// The text of an A2A response: every `text` part of the result's message
/// (or of its artifacts), joined. Empty when there is none.
pub fn response_text(response: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(response) else {
        return String::new();
    };
    let result = value.get("result").unwrap_or(&value);
    let mut texts = Vec::new();
    collect_text_parts(result, &mut texts, 0);
    texts.join("\n")
}

/// How deep the walk goes: an answer nested deeper than this is not text we
/// report, and a hostile answer cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

fn collect_text_parts(value: &serde_json::Value, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            if let Some(parts) = map.get("parts").and_then(|p| p.as_array()) {
                for part in parts {
                    if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                        out.push(text.to_string());
                    }
                }
            }
            for key in ["message", "status", "artifacts", "history"] {
                if let Some(inner) = map.get(key) {
                    collect_text_parts(inner, out, depth + 1);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for inner in items {
                collect_text_parts(inner, out, depth + 1);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_text_finds_text_parts_or_nothing() {
        let r = r#"{"result":{"kind":"message","parts":[{"kind":"text","text":"done"},{"kind":"data","data":{}}]}}"#;
        assert_eq!(response_text(r), "done");
        let task = r#"{"result":{"kind":"task","status":{"message":{"parts":[{"text":"a"}]}},"artifacts":[{"parts":[{"text":"b"}]}]}}"#;
        assert_eq!(response_text(task), "a\nb");
        assert_eq!(response_text(r#"{"result":{"parts":[]}}"#), "");
        assert_eq!(response_text("not json"), "");
    }

    #[test]
    fn a_message_carries_its_id_as_the_message_id() {
        let body: serde_json::Value = serde_json::from_str(&a2a_message("k-1", "hi")).unwrap();
        assert_eq!(body["params"]["message"]["messageId"], "k-1");
        assert_eq!(body["method"], "message/send");
        assert_eq!(response_text(&a2a_message("k", "x")), "");
    }
}
