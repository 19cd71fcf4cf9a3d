//! The task-kind protocol: how a cartridge that is a task kind is asked for each of its jobs.
//! One run answers one [`Request`]; the host (an agent) and the guest (the cartridge) both use
//! this module, so the bytes on either side are written and read by the same code.
//!
//! Request: `op` (1 byte), `seed` (u64 LE), `state` (bytes), `turns` (list of bytes), `items`
//! (list of bytes); bytes are a u32 LE length and the bytes, lists a u32 LE count and the
//! entries. Reply: `0` and the op's payload, or `1` and the error's text (UTF-8).
//!
//! | op | reads | answers |
//! |---|---|---|
//! | [`Op::Genesis`] | `seed` | the genesis state |
//! | [`Op::Contribute`] | `state`, `turns` (the solver's data), `seed` | the contribution |
//! | [`Op::Score`] | `state`, `turns` (held out), `items[0]` (one contribution) | `before`, `after` (u64 LE each; lower is better) |
//! | [`Op::Reconcile`] | `state`, `turns` (held out), `items` (every scored contribution) | per item `mint`, `novelty` (u64 LE each) |
//! | [`Op::Merge`] | `state`, `items` (the contributions consensus paid) | the next state |

/// What a run is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// The project's first state from its seed.
    Genesis = 0,
    /// A solver's contribution from the base state and its data.
    Contribute = 1,
    /// A coordinator's score of one contribution on held-out data.
    Score = 2,
    /// A coordinator's rewards of a task's contributions (mint) and their diagnostic movement
    /// (novelty).
    Reconcile = 3,
    /// The aggregator's (and every coordinator's) next state.
    Merge = 4,
}

impl Op {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Genesis,
            1 => Self::Contribute,
            2 => Self::Score,
            3 => Self::Reconcile,
            4 => Self::Merge,
            _ => return None,
        })
    }
}

/// One job for a task-kind cartridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The job.
    pub op: Op,
    /// A seed (genesis, the solver's randomness).
    pub seed: u64,
    /// The state the job starts from (empty for genesis).
    pub state: &'a [u8],
    /// Data: a solver's turns, or the held-out turns.
    pub turns: Vec<&'a [u8]>,
    /// Contributions.
    pub items: Vec<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// A request of `op` with nothing in it yet.
    pub fn new(op: Op) -> Self {
        Self {
            op,
            seed: 0,
            state: &[],
            turns: Vec::new(),
            items: Vec::new(),
        }
    }

    /// The request's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.op as u8];
        out.extend_from_slice(&self.seed.to_le_bytes());
        put(&mut out, self.state);
        for list in [&self.turns, &self.items] {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for b in list.iter() {
                put(&mut out, b);
            }
        }
        out
    }

    /// Reads a request written by [`Self::encode`].
    pub fn decode(input: &'a [u8]) -> Result<Self, String> {
        let mut r = Cursor(input);
        let op = r.take(1, "op")?[0];
        let op = Op::from_u8(op).ok_or_else(|| format!("unknown op {op}"))?;
        let seed = u64::from_le_bytes(r.take(8, "seed")?.try_into().expect("8 bytes"));
        let state = r.bytes("state")?;
        let turns = r.list("turns")?;
        let items = r.list("items")?;
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the request", r.0.len()));
        }
        Ok(Self {
            op,
            seed,
            state,
            turns,
            items,
        })
    }
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("the request ends inside its {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")) as usize)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.len(what)?;
        self.take(n, what)
    }

    fn list(&mut self, what: &str) -> Result<Vec<&'a [u8]>, String> {
        let n = self.len(what)?;
        if n > self.0.len() / 4 {
            return Err(format!("the request's {what} count {n} exceeds its bytes"));
        }
        (0..n).map(|_| self.bytes(what)).collect()
    }
}

/// A guest's answer: `0` and `payload`, or `1` and the error's text.
pub fn reply(result: Result<Vec<u8>, String>) -> Vec<u8> {
    match result {
        Ok(payload) => {
            let mut out = Vec::with_capacity(payload.len() + 1);
            out.push(0);
            out.extend_from_slice(&payload);
            out
        }
        Err(e) => {
            let mut out = vec![1];
            out.extend_from_slice(e.as_bytes());
            out
        }
    }
}

/// The host's reading of a reply: the payload, or the error the guest gave.
pub fn parse_reply(out: &[u8]) -> Result<&[u8], String> {
    match out.split_first() {
        Some((0, payload)) => Ok(payload),
        Some((1, text)) => Err(String::from_utf8_lossy(text).into_owned()),
        Some((b, _)) => Err(format!("the reply starts with {b}, neither 0 nor 1")),
        None => Err("the reply is empty".into()),
    }
}

/// `values` as u64 LE.
pub fn encode_u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// u64 LE values, exactly `n` of them.
pub fn decode_u64s(bytes: &[u8], n: usize) -> Result<Vec<u64>, String> {
    if bytes.len() != 8 * n {
        return Err(format!(
            "expected {n} numbers ({} bytes), got {} bytes",
            8 * n,
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_bad_bytes_are_named() {
        let r = Request {
            op: Op::Reconcile,
            seed: 7,
            state: b"state",
            turns: vec![b"a", b""],
            items: vec![b"xyz"],
        };
        let bytes = r.encode();
        assert_eq!(Request::decode(&bytes).unwrap(), r);
        let cut = &bytes[..bytes.len() - 1];
        assert!(Request::decode(cut).unwrap_err().contains("items"));
        let mut op = bytes.clone();
        op[0] = 9;
        assert_eq!(Request::decode(&op).unwrap_err(), "unknown op 9");
        let mut trailing = bytes;
        trailing.push(0);
        assert!(Request::decode(&trailing).unwrap_err().contains("after"));
    }

    #[test]
    fn replies_and_numbers_round_trip() {
        assert_eq!(parse_reply(&reply(Ok(vec![5]))), Ok(&[5u8][..]));
        assert_eq!(parse_reply(&reply(Err("no".into()))), Err("no".into()));
        assert!(parse_reply(&[]).is_err());
        assert_eq!(
            decode_u64s(&encode_u64s(&[1, u64::MAX]), 2).unwrap(),
            [1, u64::MAX]
        );
        assert!(decode_u64s(&[0; 8], 2).is_err());
    }
}
