//! Every RPC the server serves, in one table: its service and method, its kind (unary or which
//! way it streams) and its rate-limit class. Each property is an exhaustive `match`, so a new
//! RPC does not compile until it is classified, and a test checks the table against the served
//! descriptors (names and streaming flags). A path the table does not know is refused, never
//! given some default class.
use crate::pb::{library_admin_service_server, library_service_server};

/// Classes of calls, each with its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    Read,
    Write,
    Stream,
    Admin,
}

/// Which way messages flow, as the descriptors' `client_streaming`/`server_streaming` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcKind {
    Unary,
    ClientStream,
    ServerStream,
    BidiStream,
}

impl RpcKind {
    /// The `grpc_type` label of the conventional gRPC server metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    RecordPlay,
    RecordPlays,
    ImportHistory,
    ListHistory,
    DeletePlay,
    ClearHistory,
    LikeTrack,
    UnlikeTrack,
    UpdateLikedTrack,
    ListLikedTracks,
    CheckLikedTracks,
    GetLibraryStats,
    GetTrackPlayCounts,
    GetTopTracks,
    ReportPlayback,
    GetNowPlaying,
    WatchLibrary,
    ExportLibrary,
    GetTopListeners,
    GetMostLikedTracks,
    GetHistoryGrowth,
    PurgeHistory,
    DeleteUserData,
    DeleteTrackData,
    ExportUserData,
    HealthCheck,
    HealthWatch,
    ReflectionV1,
    ReflectionV1Alpha,
}

impl Rpc {
    /// Every RPC; `of_path` looks paths up here. (A variant left out of this list is never
    /// constructed, which the compiler reports; the descriptor test catches a served method
    /// missing from it.)
    pub const ALL: [Rpc; 29] = [
        Self::RecordPlay,
        Self::RecordPlays,
        Self::ImportHistory,
        Self::ListHistory,
        Self::DeletePlay,
        Self::ClearHistory,
        Self::LikeTrack,
        Self::UnlikeTrack,
        Self::UpdateLikedTrack,
        Self::ListLikedTracks,
        Self::CheckLikedTracks,
        Self::GetLibraryStats,
        Self::GetTrackPlayCounts,
        Self::GetTopTracks,
        Self::ReportPlayback,
        Self::GetNowPlaying,
        Self::WatchLibrary,
        Self::ExportLibrary,
        Self::GetTopListeners,
        Self::GetMostLikedTracks,
        Self::GetHistoryGrowth,
        Self::PurgeHistory,
        Self::DeleteUserData,
        Self::DeleteTrackData,
        Self::ExportUserData,
        Self::HealthCheck,
        Self::HealthWatch,
        Self::ReflectionV1,
        Self::ReflectionV1Alpha,
    ];

    /// The fully qualified service and the method, as in the path `/service/method`.
    pub fn name(self) -> (&'static str, &'static str) {
        let library = library_service_server::SERVICE_NAME;
        let admin = library_admin_service_server::SERVICE_NAME;
        match self {
            Self::RecordPlay => (library, "RecordPlay"),
            Self::RecordPlays => (library, "RecordPlays"),
            Self::ImportHistory => (library, "ImportHistory"),
            Self::ListHistory => (library, "ListHistory"),
            Self::DeletePlay => (library, "DeletePlay"),
            Self::ClearHistory => (library, "ClearHistory"),
            Self::LikeTrack => (library, "LikeTrack"),
            Self::UnlikeTrack => (library, "UnlikeTrack"),
            Self::UpdateLikedTrack => (library, "UpdateLikedTrack"),
            Self::ListLikedTracks => (library, "ListLikedTracks"),
            Self::CheckLikedTracks => (library, "CheckLikedTracks"),
            Self::GetLibraryStats => (library, "GetLibraryStats"),
            Self::GetTrackPlayCounts => (library, "GetTrackPlayCounts"),
            Self::GetTopTracks => (library, "GetTopTracks"),
            Self::ReportPlayback => (library, "ReportPlayback"),
            Self::GetNowPlaying => (library, "GetNowPlaying"),
            Self::WatchLibrary => (library, "WatchLibrary"),
            Self::ExportLibrary => (library, "ExportLibrary"),
            Self::GetTopListeners => (admin, "GetTopListeners"),
            Self::GetMostLikedTracks => (admin, "GetMostLikedTracks"),
            Self::GetHistoryGrowth => (admin, "GetHistoryGrowth"),
            Self::PurgeHistory => (admin, "PurgeHistory"),
            Self::DeleteUserData => (admin, "DeleteUserData"),
            Self::DeleteTrackData => (admin, "DeleteTrackData"),
            Self::ExportUserData => (admin, "ExportUserData"),
            Self::HealthCheck => (HEALTH, "Check"),
            Self::HealthWatch => (HEALTH, "Watch"),
            Self::ReflectionV1 => (REFLECTION_V1, "ServerReflectionInfo"),
            Self::ReflectionV1Alpha => (REFLECTION_V1ALPHA, "ServerReflectionInfo"),
        }
    }

    pub fn kind(self) -> RpcKind {
        match self {
            Self::ImportHistory => RpcKind::ClientStream,
            Self::ListHistory
            | Self::WatchLibrary
            | Self::ExportLibrary
            | Self::ExportUserData
            | Self::HealthWatch => RpcKind::ServerStream,
            Self::ReflectionV1 | Self::ReflectionV1Alpha => RpcKind::BidiStream,
            Self::RecordPlay
            | Self::RecordPlays
            | Self::DeletePlay
            | Self::ClearHistory
            | Self::LikeTrack
            | Self::UnlikeTrack
            | Self::UpdateLikedTrack
            | Self::ListLikedTracks
            | Self::CheckLikedTracks
            | Self::GetLibraryStats
            | Self::GetTrackPlayCounts
            | Self::GetTopTracks
            | Self::ReportPlayback
            | Self::GetNowPlaying
            | Self::GetTopListeners
            | Self::GetMostLikedTracks
            | Self::GetHistoryGrowth
            | Self::PurgeHistory
            | Self::DeleteUserData
            | Self::DeleteTrackData
            | Self::HealthCheck => RpcKind::Unary,
        }
    }

    /// The quota a call counts against; `None` for health and reflection, which infrastructure
    /// calls without a token and which are never rate limited.
    pub fn class(self) -> Option<CallClass> {
        match self {
            Self::ListHistory | Self::ImportHistory | Self::WatchLibrary | Self::ExportLibrary => {
                Some(CallClass::Stream)
            }
            Self::RecordPlay
            | Self::RecordPlays
            | Self::DeletePlay
            | Self::ClearHistory
            | Self::LikeTrack
            | Self::UnlikeTrack
            | Self::UpdateLikedTrack
            | Self::ReportPlayback => Some(CallClass::Write),
            Self::ListLikedTracks
            | Self::CheckLikedTracks
            | Self::GetLibraryStats
            | Self::GetTrackPlayCounts
            | Self::GetTopTracks
            | Self::GetNowPlaying => Some(CallClass::Read),
            Self::GetTopListeners
            | Self::GetMostLikedTracks
            | Self::GetHistoryGrowth
            | Self::PurgeHistory
            | Self::DeleteUserData
            | Self::DeleteTrackData
            | Self::ExportUserData => Some(CallClass::Admin),
            Self::HealthCheck
            | Self::HealthWatch
            | Self::ReflectionV1
            | Self::ReflectionV1Alpha => None,
        }
    }

    /// The RPC of a request path `/service/method`, if this server serves it.
    pub fn of_path(path: &str) -> Option<Self> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        Self::ALL
            .into_iter()
            .find(|rpc| rpc.name() == (service, method))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    /// Every descriptor set the server serves over reflection, and reflection's own.
    fn served_methods() -> Vec<(String, String, bool, bool)> {
        let sets = [
            crate::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut methods = Vec::new();
        for bytes in sets {
            let set = FileDescriptorSet::decode(bytes).expect("a descriptor set");
            for file in set.file {
                for service in &file.service {
                    let full = format!("{}.{}", file.package(), service.name());
                    for m in &service.method {
                        methods.push((
                            full.clone(),
                            m.name().to_string(),
                            m.client_streaming(),
                            m.server_streaming(),
                        ));
                    }
                }
            }
        }
        methods
    }

    #[test]
    fn every_served_method_is_classified_with_its_streaming_flags() {
        let served = served_methods();
        assert!(served.len() >= Rpc::ALL.len(), "{served:?}");
        for (service, method, client_streaming, server_streaming) in &served {
            let rpc = Rpc::of_path(&format!("/{service}/{method}"))
                .unwrap_or_else(|| panic!("{service}/{method} is not in the RPC table"));
            let kind = match (client_streaming, server_streaming) {
                (false, false) => RpcKind::Unary,
                (true, false) => RpcKind::ClientStream,
                (false, true) => RpcKind::ServerStream,
                (true, true) => RpcKind::BidiStream,
            };
            assert_eq!(rpc.kind(), kind, "{service}/{method}");
            let infrastructure = service.starts_with("grpc.");
            assert_eq!(rpc.class().is_none(), infrastructure, "{service}/{method}");
        }
        for rpc in Rpc::ALL {
            let (service, method) = rpc.name();
            assert!(
                served
                    .iter()
                    .any(|(s, m, _, _)| s == service && m == method),
                "{rpc:?} names {service}/{method}, which nothing serves"
            );
        }
    }

    #[test]
    fn paths_fall_into_their_class() {
        let class = |path: &str| Rpc::of_path(path).and_then(Rpc::class);
        let p = |m: &str| format!("/audiohm.library.v1.LibraryService/{m}");
        assert_eq!(class(&p("ListHistory")), Some(CallClass::Stream));
        assert_eq!(class(&p("RecordPlays")), Some(CallClass::Write));
        assert_eq!(class(&p("GetLibraryStats")), Some(CallClass::Read));
        assert_eq!(
            class("/audiohm.library.v1.LibraryAdminService/PurgeHistory"),
            Some(CallClass::Admin)
        );
        assert_eq!(class("/grpc.health.v1.Health/Check"), None);
    }

    #[test]
    fn unknown_paths_have_no_class() {
        for path in [
            "/audiohm.library.v1.LibraryService/DropTables",
            "/audiohm.library.v1.LibraryService/",
            "/audiohm.library.v1.LibraryService",
            "RecordPlay",
            "",
        ] {
            assert_eq!(Rpc::of_path(path), None, "{path}");
        }
    }
}
