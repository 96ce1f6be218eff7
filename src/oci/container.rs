//! Values of the container configuration that both `kiln image` flags and kiln.toml accept:
//! exposed ports, the user, the working folder. Each check returns a reason; callers say
//! where the value came from (a flag, or file:line:column).

/// The `ExposedPorts` keys for `8080`, `53/udp` or `8000-8010/tcp`.
pub fn exposed_ports(value: &str) -> Result<Vec<String>, String> {
    let (range, protocol) = value.split_once('/').unwrap_or((value, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err("the protocol must be tcp, udp or sctp".to_owned());
    }
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let parse = |text: &str| match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("`{text}` is not a port number (1-65535)")),
    };
    let (first, last) = (parse(first)?, parse(last)?);
    if first > last {
        return Err("the range is backwards".to_owned());
    }
    Ok((first..=last)
        .map(|port| format!("{port}/{protocol}"))
        .collect())
}

/// A user is `NAME`, `UID`, `NAME:GROUP` or `UID:GID`.
pub fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.chars().any(char::is_whitespace) || user.matches(':').count() > 1 {
        return Err("expected NAME, UID or UID:GID".to_owned());
    }
    Ok(())
}

/// A working folder is absolute.
pub fn check_workdir(workdir: &str) -> Result<(), String> {
    if !workdir.starts_with('/') {
        return Err("not an absolute path".to_owned());
    }
    Ok(())
}

/// A `Volumes` entry: an absolute path to a folder of the image, as Docker reads them
/// (`docker run` refuses a relative one), without `.` or `..` parts or a trailing `/` (kiln
/// writes each folder one way, so the digest does not depend on the spelling).
pub fn check_volume(volume: &str) -> Result<(), String> {
    if !volume.starts_with('/') {
        return Err("not an absolute path".to_owned());
    }
    if volume == "/" {
        return Err("the root folder (a volume must be a folder inside the image)".to_owned());
    }
    if volume.ends_with('/') || volume.contains("//") {
        return Err("not written in one way: no trailing `/` or `//`".to_owned());
    }
    if volume.split('/').any(|part| part == "." || part == "..") {
        return Err("not written in one way: no `.` or `..` parts".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        assert!(check_volume("/data").is_ok());
        assert!(check_volume("/var/lib/app").is_ok());
        for bad in ["data", "/", "/data/", "/a//b", "/a/../b", "/./a", ""] {
            assert!(check_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(exposed_ports("8080").unwrap(), ["8080/tcp"]);
        assert_eq!(exposed_ports("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            exposed_ports("9000-9002/tcp").unwrap(),
            ["9000/tcp", "9001/tcp", "9002/tcp"]
        );
        for bad in ["0", "70000", "80/http", "9-1", "x"] {
            assert!(exposed_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_and_folders() {
        for good in ["nonroot", "65532", "65532:65532", "app:app"] {
            assert!(check_user(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "1:2:3"] {
            assert!(check_user(bad).is_err(), "{bad}");
        }
        assert!(check_workdir("/srv").is_ok());
        assert!(check_workdir("srv").is_err());
    }
}
